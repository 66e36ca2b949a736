// The classic guide's PM2 file: cluster mode on every CPU, ready when the app says so.
module.exports = {
  apps: [
    {
      name: 'shop',
      script: './server.js',
      instances: 'max',
      exec_mode: 'cluster',
      wait_ready: true,
      listen_timeout: 10000,
      kill_timeout: 5000,
      max_memory_restart: '300M',
      min_uptime: '5s',
      max_restarts: 10,
      watch: false,
      env: { NODE_ENV: 'development', LOG_LEVEL: 'info' },
      env_production: { NODE_ENV: 'production' },
      env_staging: { NODE_ENV: 'staging' },
    },
    {
      name: 'worker',
      script: './worker.js',
      instances: 2,
      kill_timeout: 3000,
      cron_restart: '0 3 * * *',
    },
  ],
};
