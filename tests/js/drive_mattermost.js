// Drives a Mattermost server (the fake one in our tests) with the official JS client,
// unpatched: Client4 (REST) and WebSocketClient.
//
//   node drive_mattermost.js <server url> <token> <channel id> [slash command]
//
// Steps: Client4.getMe, WebSocketClient.initialize (authentication_challenge), wait for
// `hello`, Client4.createPost, wait for the `posted` event of that post, and, when given,
// Client4.executeCommand of the slash command in that channel. Prints one JSON
// object per line on stdout (the client's own console.log lines do not start with "{"), and
// exits 0, or 1 with {"step":"error",...} after a failure or a 20 s deadline.
'use strict';

const {Client4, WebSocketClient} = require('@mattermost/client');
const WebSocket = require('ws');

// Node 20 has no global WebSocket; the client constructs sockets through newWebSocketFn
// but still reads WebSocket.OPEN from the global scope.
globalThis.WebSocket = WebSocket;

const DEADLINE_MS = 20000;

function report(result) {
    process.stdout.write(JSON.stringify(result) + '\n');
}

function fail(error) {
    report({step: 'error', message: String((error && error.stack) || error)});
    process.exit(1);
}

async function main() {
    const [url, token, channelId, command] = process.argv.slice(2);
    if (!url || !token || !channelId) {
        throw new Error('usage: node drive_mattermost.js <url> <token> <channel id>');
    }
    const client = new Client4();
    client.setUrl(url);
    client.setToken(token);

    const me = await client.getMe();
    report({step: 'me', id: me.id, username: me.username, server_version: client.serverVersion});

    const ws = new WebSocketClient({newWebSocketFn: (socketUrl) => new WebSocket(socketUrl)});
    const events = [];
    const postedById = new Map(); // the event may arrive before createPost resolves
    let resolveHello;
    const hello = new Promise((resolve) => { resolveHello = resolve; });
    let notifyPosted = () => {};
    ws.addMessageListener((msg) => {
        events.push({event: msg.event, seq: msg.seq});
        if (msg.event === 'hello') {
            resolveHello(msg);
        } else if (msg.event === 'posted') {
            postedById.set(JSON.parse(msg.data.post).id, msg);
            notifyPosted();
        }
    });
    ws.addErrorListener((evt) => fail(new Error('websocket error: ' + (evt && evt.message))));
    ws.initialize(url.replace(/^http/, 'ws') + '/api/v4/websocket', token);

    const helloMsg = await hello;
    report({step: 'hello', connection_id: helloMsg.data.connection_id,
            server_version: helloMsg.data.server_version});

    const created = await client.createPost({channel_id: channelId, message: 'hello from Client4 안녕'});
    report({step: 'created', id: created.id, user_id: created.user_id,
            channel_id: created.channel_id, message: created.message});

    const msg = await new Promise((resolve) => {
        notifyPosted = () => postedById.has(created.id) && resolve(postedById.get(created.id));
        notifyPosted();
    });
    const post = JSON.parse(msg.data.post);
    report({step: 'posted', id: post.id, message: post.message, seq: msg.seq,
            channel_type: msg.data.channel_type, sender_name: msg.data.sender_name,
            events});
    if (command) {
        const answer = await client.executeCommand(command, {channel_id: channelId});
        report({step: 'command', response_type: answer.response_type, text: answer.text});
    }
    ws.close();
}

const timer = setTimeout(() => fail(new Error(`no result within ${DEADLINE_MS} ms`)), DEADLINE_MS);
main().then(() => {
    clearTimeout(timer);
    report({step: 'done'});
    process.exit(0);
}, fail);
