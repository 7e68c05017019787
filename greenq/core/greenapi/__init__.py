"""GREEN API's HTTP API as every greenq process that calls it shares it: the base client (URLs, timeouts,
status handling), its errors, and keeping tokens out of logs. The poller and the sender build on it."""
