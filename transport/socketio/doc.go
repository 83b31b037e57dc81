// Package socketio serves caasd's client protocol to Socket.IO v4 clients
// (the npm package socket.io-client 4.x with its default options) at
// /socket.io/: Engine.IO protocol v4 (HTTP long-polling, WebSocket and the
// upgrade from one to the other, server-driven heartbeats) carrying
// Socket.IO protocol v5 packets (CONNECT with auth {token}, EVENT, ACK,
// DISCONNECT) on the default namespace only.
//
// The codec only translates frames: a Socket.IO connection is a
// transport.Conn registered in the node's transport.Registry, and its
// events go to the same transport.Handler as the native /ws endpoint's.
// Binary packets and attachments are refused with an "error" event of
// code invalid_message.
//
// Sessions live in the memory of the node that created them: every
// request of one Engine.IO session (the polling GETs and POSTs and the
// WebSocket upgrade, all carrying the same sid) must reach that node.
// Behind a load balancer sticky sessions are therefore required (for
// example cookie- or source-address-based affinity); without them a
// client that starts on long-polling gets "Session ID unknown" errors.
// Clients that connect with transports: ['websocket'] need no affinity.
package socketio
