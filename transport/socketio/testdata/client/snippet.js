// The front-end snippet of the README, unchanged but for the URL, the token
// and the ids, which come from the environment (SIO_URL, SIO_TOKEN,
// SIO_CONV, SIO_MSG). The lines after it only end the process.
const { io } = require('socket.io-client');
const url = process.env.SIO_URL;
const token = process.env.SIO_TOKEN;
const conv = process.env.SIO_CONV;
const msg = process.env.SIO_MSG;

const socket = io(url, { auth: { token: token } });
socket.emit('joinRoom', { conversation_id: conv });
socket.on('room:joined', (data) => console.log('Joined room:', data));
socket.on('room:error', (error) => console.error('Authorization failed:', error));
socket.emit('sendMessage', { message_id: msg, conversation_id: conv, content: { type: 'text', text: 'Test message' } });
socket.on('message:persisted', (data) => console.log('Message persisted:', data));

socket.on('message:persisted', () => {
  socket.close();
  setTimeout(() => process.exit(0), 100);
});
setTimeout(() => {
  console.error('timeout: no message:persisted');
  process.exit(2);
}, Number(process.env.SIO_TIMEOUT_MS || 30000));
