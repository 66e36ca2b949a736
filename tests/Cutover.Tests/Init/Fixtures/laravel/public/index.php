<?php
// Answers with the release it was served from: a request that reaches an old release after the switch shows it.
echo "storefront from " . basename(dirname(__DIR__)) . "\n";
