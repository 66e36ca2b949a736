<?php
// Prints which release served the request, so a load test can see each switch land.
$release = basename(dirname(__DIR__));
$version = trim(@file_get_contents(__DIR__ . '/../VERSION') ?: 'unknown');
header('Content-Type: text/plain');
header('X-Release: ' . $release);
echo "hello from {$version} (release {$release})\n";
