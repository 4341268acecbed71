// mchat-actors admin page: plain JS, no build step. Reads the admin API with the token the
// operator typed (kept in sessionStorage); builds the DOM with textContent only.
"use strict";

(() => {
  const KEY = "mchat-admin-token";
  const API = "/api/v1/mchat";
  const STATUS_EVERY_MS = 2000;
  const LISTS_EVERY_MS = 6000;
  const HISTORY = 90; // samples: 3 minutes at 2 s
  const $ = (id) => document.getElementById(id);
  const history = [];
  let previous = null;
  let timers = [];

  function token() { return sessionStorage.getItem(KEY); }

  async function api(method, path, body) {
    const headers = { Authorization: "Bearer " + token() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(API + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    if (res.status === 401 || res.status === 403) {
      const data = await res.json().catch(() => ({}));
      showLogin(res.status === 403 ? "The admin API is off (MCHAT_ADMIN_TOKEN is not set)."
        : "That token was not accepted.");
      throw new Error(data.error || "unauthorized");
    }
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((data.error || res.statusText) + (data.detail ? ": " + JSON.stringify(data.detail) : ""));
    return data;
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function fmtAge(s) {
    if (s === null || s === undefined) return "–";
    if (s < 60) return s.toFixed(1) + " s";
    if (s < 3600) return (s / 60).toFixed(1) + " min";
    return (s / 3600).toFixed(1) + " h";
  }

  function fmtTime(epoch) {
    return epoch ? new Date(epoch * 1000).toLocaleString() : "–";
  }

  function banner(msg) {
    const b = $("banner");
    b.textContent = msg || "";
    b.hidden = !msg;
  }

  function showLogin(msg) {
    timers.forEach(clearInterval);
    timers = [];
    $("main").hidden = true;
    $("logout").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = msg || "";
  }

  function showMain() {
    $("login").hidden = true;
    $("main").hidden = false;
    $("logout").hidden = false;
    refreshStatus();
    refreshLists();
    refreshMemories();
    timers.push(setInterval(refreshStatus, STATUS_EVERY_MS));
    timers.push(setInterval(refreshLists, LISTS_EVERY_MS));
  }

  // ------------------------------------------------------------------ status and chart
  async function refreshStatus() {
    let st;
    try { st = await api("GET", "/status"); } catch (e) { banner(e.message); return; }
    banner("");
    const warnings = $("warnings");
    warnings.replaceChildren(...(st.warnings || []).map((w) => el("li", w)));
    warnings.hidden = !(st.warnings || []).length;
    const c = st.connection, n = st.counters;
    const badge = $("conn");
    badge.textContent = c.state;
    badge.className = "badge " + (c.state === "websocket" ? "ok" : c.state === "polling" ? "warn" : "bad");
    $("mode").textContent = "mode " + c.configured_mode + " · for " + fmtAge(c.state_age_s) +
      " · up " + fmtAge(st.uptime_s);
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    $("c-messages").textContent = n.messages_processed;
    $("c-replies").textContent = n.replies;
    $("c-ai").textContent = n.ai_responses;
    $("c-memories").textContent = n.memories_saved;
    $("c-pending").textContent = st.outbox.counts.pending || 0;
    $("c-failed").textContent = st.outbox.counts.failed || 0;
    $("c-oldest").textContent = st.outbox.oldest_pending_age_s === null ? "" : "oldest " + fmtAge(st.outbox.oldest_pending_age_s);
    $("c-last-event").textContent = fmtAge(c.last_event_age_s);
    $("c-reconnects").textContent = c.reconnects;
    $("c-resumes").textContent = c.resumes + " resumed · " + c.backfills + " backfills";
    $("c-chat").textContent = st.chat.calls + " calls";
    $("c-chat-lat").textContent = (st.chat.failures + " failed") +
      (st.chat.latency_p50_s === null ? "" : " · p50 " + (st.chat.latency_p50_s * 1000).toFixed(0) + " ms");
    $("c-429").textContent = st.rate_limit.rest_429s;
    $("c-waits").textContent = st.rate_limit.waits + " bucket waits";
    const db = (st.config || {}).database || {};
    $("c-db").textContent = db.backend || "–";
    const rp = st.replica;
    $("c-replica").textContent = (db.where || "") + (rp ? " · replica " + rp.replica_id + " · " +
      rp.leases_held + "/" + rp.buckets + " leases" : "");
    const lg = (st.safety || {}).loop_guard;
    if (lg) {
      $("c-capped").textContent = lg.answers_capped + " capped";
      $("c-bots").textContent = lg.bot_posts_unanswered + " bot posts not answered · max " +
        lg.max_answers_per_min + "/min/channel";
    }

    const sample = { t: st.time, messages: n.messages_processed, replies: n.replies };
    if (previous && sample.t > previous.t) {
      const dt = sample.t - previous.t;
      history.push({
        messages: Math.max(0, (sample.messages - previous.messages) / dt),
        replies: Math.max(0, (sample.replies - previous.replies) / dt),
      });
      while (history.length > HISTORY) history.shift();
      const last = history[history.length - 1];
      $("r-messages").textContent = last.messages.toFixed(2) + "/s";
      $("r-replies").textContent = last.replies.toFixed(2) + "/s";
      drawChart();
    }
    previous = sample;
  }

  function drawChart() {
    const W = 600, H = 160, pad = 4;
    const max = Math.max(1, ...history.map((h) => Math.max(h.messages, h.replies)));
    const x = (i) => pad + (W - 2 * pad) * (HISTORY - history.length + i) / (HISTORY - 1);
    const y = (v) => H - pad - (H - 2 * pad) * v / max;
    const pts = (k) => history.map((h, i) => x(i).toFixed(1) + "," + y(h[k]).toFixed(1)).join(" ");
    $("line-messages").setAttribute("points", pts("messages"));
    $("line-replies").setAttribute("points", pts("replies"));
    const grid = $("grid");
    while (grid.firstChild) grid.removeChild(grid.firstChild);
    for (let i = 1; i < 4; i++) {
      const line = document.createElementNS("http://www.w3.org/2000/svg", "line");
      line.setAttribute("x1", 0); line.setAttribute("x2", W);
      line.setAttribute("y1", y(max * i / 4)); line.setAttribute("y2", y(max * i / 4));
      grid.appendChild(line);
    }
    $("chart-max").textContent = "(top of chart: " + max.toFixed(2) + "/s)";
  }

  // ------------------------------------------------------------------ tables
  function fill(tableId, rows, render) {
    const body = $(tableId).tBodies[0];
    while (body.firstChild) body.removeChild(body.firstChild);
    if (!rows.length) {
      const tr = el("tr");
      const td = el("td", "nothing here", "muted");
      td.colSpan = $(tableId).tHead.rows[0].cells.length;
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    rows.forEach((row) => {
      const tr = el("tr");
      render(row).forEach((cell) => {
        const td = el("td");
        if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell === null || cell === undefined ? "–" : String(cell);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  async function refreshLists() {
    try {
      const [box, channels, users, audit, parked] = await Promise.all([
        api("GET", "/outbox?limit=50"), api("GET", "/mappings/channels"),
        api("GET", "/mappings/users"), api("GET", "/audit?limit=30"),
        api("GET", "/retry-queue?limit=50"),
      ]);
      const now = Date.now() / 1000;
      fill("outbox", box.failed.concat(box.pending), (r) => {
        let action = "";
        if (r.status === "failed") {
          action = el("button", "Retry");
          action.type = "button";
          action.addEventListener("click", () => act(() => api("POST", "/outbox/" + r.id + "/retry")));
        }
        return [r.id, r.status, r.channel_id, r.attempts, fmtAge(now - r.created_at),
          r.last_error, (r.message || "").slice(0, 80), action];
      });
      fill("retry-queue", parked.rows, (r) => {
        const cells = [r.id, r.status, r.channel_id, r.post_id || "–", r.kind, r.attempts,
          r.status === "pending" ? fmtAge(Math.max(0, r.next_attempt_at - now)) : "–", r.last_error];
        if (r.status !== "pending") return cells.concat([""]);
        const span = el("span", "");
        for (const what of ["retry", "discard"]) {
          const b = el("button", what === "retry" ? "Retry now" : "Discard");
          b.type = "button";
          b.addEventListener("click", () => {
            if (what === "discard" && !confirm("Give up on this post for good?")) return;
            act(() => api("POST", "/retry-queue/" + r.id + "/" + what));
          });
          span.appendChild(b);
        }
        return cells.concat([span]);
      });
      fill("channels", channels.channels, (r) => {
        const box2 = el("input");
        box2.type = "checkbox";
        box2.checked = !!r.sync_enabled;
        box2.title = "store and answer this channel's posts";
        box2.addEventListener("change", () => act(() => api("PUT",
          "/mappings/channels/" + encodeURIComponent(r.mchat_channel_id) + "/sync", { enabled: box2.checked })));
        return [r.mchat_channel_id, r.mchat_display_name || r.mchat_channel_name, r.channel_type,
          r.agent_room_id, r.last_post_at ? new Date(r.last_post_at).toLocaleString() : "–", box2];
      });
      fill("users", users.users, (r) => [r.mchat_user_id, r.mchat_username, r.agent_user_id, r.matched_by]);
      fill("audit", audit.entries, (r) => [fmtTime(r.at), r.actor, r.action, r.target, r.detail, r.remote_addr]);
    } catch (e) { banner(e.message); }
  }

  // ------------------------------------------------------------------ memories
  function fmtMs(ms) { return ms ? new Date(ms).toLocaleString() : "–"; }

  async function refreshMemories() {
    const q = encodeURIComponent($("memory-q").value.trim());
    const state = encodeURIComponent($("memory-state").value);
    try {
      const found = await api("GET", "/memories?limit=100&state=" + state + "&q=" + q);
      fill("memories", found.memories, (m) => {
        const buttons = el("span");
        const history = el("button", "History");
        history.type = "button";
        history.addEventListener("click", () => showHistory(m.id.slice(1)));
        buttons.appendChild(history);
        if (m.state === "current" || m.state === "forgotten") {
          const verb = m.state === "forgotten" ? "restore" : "forget";
          const mark = el("button", verb === "forget" ? "Forget" : "Restore");
          mark.type = "button";
          mark.addEventListener("click", () => act(async () => {
            await api("POST", "/memories/" + m.id.slice(1) + "/" + verb);
            await refreshMemories();
          }));
          buttons.appendChild(mark);
        }
        return [m.id, m.state, m.content, m.room, m.author, fmtMs(m.valid_from_ms), buttons];
      });
    } catch (e) { banner(e.message); }
  }

  async function showHistory(id) {
    try {
      const h = await api("GET", "/memories/" + id);
      fill("memory-history", h.versions, (v) => {
        let source = "–";
        if (v.permalink && /^https?:\/\//.test(v.permalink)) {
          source = el("a", "post");
          source.href = v.permalink;
          source.rel = "noreferrer";
        }
        const trail = v.audit.map((a) => a.action + (a.actor ? " by " + a.actor : "")).join(", ");
        return [v.id, v.state, v.content, v.author, v.room, fmtMs(v.valid_from_ms),
          fmtMs(v.valid_to_ms), source, trail];
      });
    } catch (e) { banner(e.message); }
  }

  async function act(fn) {
    try { await fn(); banner(""); } catch (e) { banner(e.message); }
    refreshLists();
    refreshStatus();
  }

  // ------------------------------------------------------------------ start
  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(KEY, $("token").value.trim());
      $("token").value = "";
      showMain();
    });
    $("logout").addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      showLogin("");
    });
    $("memory-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      refreshMemories();
    });
    $("map-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const id = $("map-channel").value.trim();
      act(() => api("POST", "/mappings/channels", { channel_id: id }));
      $("map-channel").value = "";
    });
    if (token()) showMain(); else showLogin("");
  });
})();
