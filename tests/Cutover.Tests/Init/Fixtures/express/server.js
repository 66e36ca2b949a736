// The classic guide's app, without the express dependency (the fixture must install offline): listen on PORT,
// tell PM2 (or Cutover) it is ready, and close the server on SIGINT so in-flight requests finish.
const http = require('http');
const port = process.env.PORT || 3000;
const server = http.createServer((req, res) => {
  if (req.url === '/health') { res.writeHead(200); res.end('ok'); return; }
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`hello from ${process.env.NODE_ENV || 'development'}\n`);
});
server.listen(port, () => { if (process.send) process.send('ready'); });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
