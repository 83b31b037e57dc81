// A Socket.IO 4.8 chat server for bench/compare.sh, measured side by side
// with caasd under the same load tool (bench/cmd/load -target=socketio).
// It does the least a chat server does: a connection authenticates with an
// HS256 JWT (handshake auth "token"), joins rooms ("joinRoom", answered
// "room:joined"), and "sendMessage" to a room it joined is emitted to the
// room as "message:new", the sender included. No sequence numbers, no
// Kafka, no store: what caasd does beyond that is its own cost.
//
//   PORT=18081 JWT_SECRET=… node --expose-gc server.js
//
// GET /gc runs a full garbage collection, so that the idle scenario reads
// memory after one, as it does of caasd.
'use strict';

const crypto = require('crypto');
const http = require('http');
const { Server } = require('socket.io');

const port = Number(process.env.PORT || 18081);
const secret = process.env.JWT_SECRET || '';
if (secret.length < 32) {
  console.error('JWT_SECRET must be at least 32 characters');
  process.exit(2);
}

// verify returns the JWT's subject when its HS256 signature and expiry hold.
function verify(token) {
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 3) return null;
  const want = crypto.createHmac('sha256', secret).update(parts[0] + '.' + parts[1]).digest();
  const got = Buffer.from(parts[2], 'base64url');
  if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) return null;
  let claims;
  try {
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
  } catch {
    return null;
  }
  if (typeof claims.sub !== 'string' || !(claims.exp * 1000 > Date.now())) return null;
  return claims.sub;
}

const httpServer = http.createServer((req, res) => {
  if (req.url === '/gc' && typeof global.gc === 'function') {
    global.gc();
    res.end('ok\n');
    return;
  }
  res.statusCode = 404;
  res.end();
});

const io = new Server(httpServer, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  maxHttpBufferSize: 64 * 1024,
});

io.use((socket, next) => {
  const user = verify(socket.handshake.auth && socket.handshake.auth.token);
  if (!user) return next(new Error('invalid token'));
  socket.data.user = user;
  next();
});

io.on('connection', (socket) => {
  socket.on('joinRoom', (d) => {
    const conv = d && d.conversation_id;
    if (typeof conv !== 'string' || conv === '') {
      socket.emit('room:error', { message: 'conversation_id is required' });
      return;
    }
    socket.join(conv);
    socket.emit('room:joined', { conversation_id: conv });
  });
  socket.on('sendMessage', (d) => {
    const conv = d && d.conversation_id;
    if (typeof conv !== 'string' || !socket.rooms.has(conv)) {
      socket.emit('message:failed', { message: 'not in this room' });
      return;
    }
    io.to(conv).emit('message:new', d);
  });
});

httpServer.listen(port, '127.0.0.1', () => {
  console.log(`socket.io ${require('socket.io/package.json').version} on 127.0.0.1:${port}, node ${process.version}`);
});

const stop = () => io.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
