<?php
// Healthy unless the release ships a file named UNHEALTHY: lets tests and demos exercise automatic rollback.
if (file_exists(__DIR__ . '/../UNHEALTHY')) {
    http_response_code(503);
    echo "unhealthy\n";
    exit;
}
echo "ok\n";
