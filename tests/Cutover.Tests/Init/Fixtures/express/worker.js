// A background worker: no port, runs until stopped.
setInterval(() => {}, 1000);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
