// Drives one socket.io-client connection for caasd's end-to-end tests
// (server/socketio_test.go).
//
// Environment: SIO_URL, SIO_TOKEN (omitted from auth when unset),
// SIO_TRANSPORTS (comma-separated, default: the client's default),
// SIO_TIMEOUT_MS (exit 3 after that long; default 60000).
// stdin, one JSON command a line: {"emit":"name","data":{…}} or, to pass an
// ack callback, {"emit":"name","data":{…},"ack":<id>}. EOF closes the socket.
// stdout, one JSON line per happening, in order:
//   {"t":"connect","transport":…} {"t":"connect_error","message":…,"data":…}
//   {"t":"event","name":…,"data":…} {"t":"ack","id":…,"data":…}
//   {"t":"upgrade","transport":…} {"t":"disconnect","reason":…}
const { io } = require('socket.io-client');
const readline = require('node:readline');

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const opts = { reconnection: false };
if (process.env.SIO_TOKEN !== undefined) opts.auth = { token: process.env.SIO_TOKEN };
if (process.env.SIO_TRANSPORTS) opts.transports = process.env.SIO_TRANSPORTS.split(',');

const socket = io(process.env.SIO_URL, opts);
socket.io.on('open', () => {
  socket.io.engine.on('upgrade', (tr) => out({ t: 'upgrade', transport: tr.name }));
});
socket.on('connect', () => out({ t: 'connect', transport: socket.io.engine.transport.name }));
socket.on('connect_error', (err) => out({ t: 'connect_error', message: err.message, data: err.data ?? null }));
socket.on('disconnect', (reason) => out({ t: 'disconnect', reason }));
socket.onAny((name, data) => out({ t: 'event', name, data }));

readline.createInterface({ input: process.stdin })
  .on('line', (line) => {
    const cmd = JSON.parse(line);
    if (cmd.ack) socket.emit(cmd.emit, cmd.data, (res) => out({ t: 'ack', id: cmd.ack, data: res }));
    else socket.emit(cmd.emit, cmd.data);
  })
  .on('close', () => {
    socket.close();
    setTimeout(() => process.exit(0), 100);
  });

setTimeout(() => {
  out({ t: 'timeout' });
  process.exit(3);
}, Number(process.env.SIO_TIMEOUT_MS || 60000));
