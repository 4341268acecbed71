// The calls a bot author typically makes, with the official JS client (unpatched), against a
// Mattermost server (the fake one in our tests):
//
//   node bot_calls.js <server url> <token> <other user id> <team name> <channel name>
//
// Users (me, by id, username, e-mail, ids, usernames), teams of a user (real id, and another
// user's: refused), team members, channels of a user in a team, channel by name (team id and
// team name), members, posts (create, thread reply, thread, channel pages: plain, since, before,
// after; patch, delete), reactions (add, list, remove, another user's: refused), and the
// WebSocket events those calls cause. Prints one JSON object per line on stdout ({"step": ...});
// a refused call prints {"status_code", "server_error_id"}. Exits 0, or 1 with
// {"step":"error"} after a failure or a 20 s deadline.
'use strict';

const {Client4, WebSocketClient} = require('@mattermost/client');
const WebSocket = require('ws');

globalThis.WebSocket = WebSocket; // see drive_mattermost.js

const DEADLINE_MS = 20000;
const WANTED_EVENTS = ['posted', 'post_edited', 'reaction_added', 'reaction_removed', 'post_deleted'];

function report(step, result) {
    process.stdout.write(JSON.stringify({step, ...result}) + '\n');
}

function fail(error) {
    report('error', {message: String((error && error.stack) || error)});
    process.exit(1);
}

async function refused(call) {
    try {
        await call();
    } catch (err) {
        return {status_code: err.status_code, server_error_id: err.server_error_id};
    }
    throw new Error('the call was not refused');
}

async function main() {
    const [url, token, otherId, teamName, channelName] = process.argv.slice(2);
    if (!url || !token || !otherId || !teamName || !channelName) {
        throw new Error('usage: node bot_calls.js <url> <token> <other user id> <team> <channel>');
    }
    const client = new Client4();
    client.setUrl(url);
    client.setToken(token);

    const events = [];
    const ws = new WebSocketClient({newWebSocketFn: (socketUrl) => new WebSocket(socketUrl)});
    let resolveHello;
    const hello = new Promise((resolve) => { resolveHello = resolve; });
    let onEvent = () => {};
    ws.addMessageListener((msg) => {
        if (msg.event === 'hello') {
            resolveHello(msg);
        } else if (WANTED_EVENTS.includes(msg.event)) {
            const data = msg.data || {};
            const post = data.post ? JSON.parse(data.post) : null;
            const reaction = data.reaction ? JSON.parse(data.reaction) : null;
            events.push({event: msg.event, seq: msg.seq, post_id: post ? post.id : reaction.post_id,
                         message: post ? post.message : undefined,
                         emoji_name: reaction ? reaction.emoji_name : undefined});
            onEvent();
        }
    });
    ws.addErrorListener((evt) => fail(new Error('websocket error: ' + (evt && evt.message))));
    ws.initialize(url.replace(/^http/, 'ws') + '/api/v4/websocket', token);
    await hello;

    const me = await client.getMe();
    const other = await client.getUser(otherId);
    report('users', {
        me,
        by_id: await client.getUser(me.id),
        by_username: await client.getUserByUsername(other.username),
        by_email: await client.getUserByEmail(other.email),
        by_ids: await client.getProfilesByIds([me.id, otherId]),
        by_usernames: await client.getProfilesByUsernames([me.username, other.username]),
    });
    const teams = await client.getTeamsForUser(me.id);
    const team = teams.find((t) => t.name === teamName);
    report('teams', {
        teams,
        my_teams: await client.getMyTeams(),
        others_teams: await refused(() => client.getTeamsForUser(otherId)),
        team_members: await client.getTeamMembersForUser(me.id),
        team_member: await client.getTeamMember(team.id, otherId),
    });
    const channel = await client.getChannelByName(team.id, channelName);
    report('channels', {
        mine: await client.getMyChannels(team.id),
        by_name: channel,
        by_team_name: await client.getChannelByNameAndTeamName(teamName, channelName),
        members: await client.getChannelMembers(channel.id),
        member: await client.getChannelMember(channel.id, me.id),
        others_channels: await refused(() => client.doFetch(
            `${client.getUserRoute(otherId)}/teams/${team.id}/channels`, {method: 'get'})),
    });

    const root = await client.createPost({channel_id: channel.id, message: 'JS root 질문'});
    const reply = await client.createPost({channel_id: channel.id, message: 'JS reply',
                                           root_id: root.id});
    const last = await client.createPost({channel_id: channel.id, message: 'JS last'});
    report('posts', {
        root, reply, last,
        thread: await client.getPostThread(root.id),
        page: await client.getPosts(channel.id, 0, 2),
        since: await client.getPostsSince(channel.id, reply.create_at - 1),
        before: await client.getPostsBefore(channel.id, last.id, 0, 2),
        after: await client.getPostsAfter(channel.id, root.id, 0, 60),
    });
    const patched = await client.patchPost({id: root.id, message: 'JS root 질문 (edited)'});
    const reaction = await client.addReaction(me.id, root.id, 'white_check_mark');
    const reactions = await client.getReactionsForPost(root.id);
    const othersReaction = await refused(() => client.addReaction(otherId, root.id, 'eyes'));
    const removed = await client.removeReaction(me.id, root.id, 'white_check_mark');
    const deleted = await client.deletePost(reply.id);
    const gone = await refused(() => client.getPost(reply.id));
    report('changes', {patched, reaction, reactions, others_reaction: othersReaction, removed,
                       deleted, gone});

    // every change above reaches the socket: 3 posted, 1 edited, 1 added, 1 removed, 1 deleted
    await new Promise((resolve) => {
        onEvent = () => events.length >= 7 && resolve();
        onEvent();
    });
    report('events', {events});
    ws.close();
}

const timer = setTimeout(() => fail(new Error(`no result within ${DEADLINE_MS} ms`)), DEADLINE_MS);
main().then(() => {
    clearTimeout(timer);
    report('done', {});
    process.exit(0);
}, fail);
