// Package turn manages the TURN servers that caasd hands to WebRTC
// clients.
//
// It mints TURN REST API credentials (the scheme coturn checks with
// --use-auth-secret: username "<expiry unix time>:<user id>", password
// base64(HMAC-SHA1(secret, username))), keeps a bounded Registry of
// servers parsed from TURN_SERVERS or the legacy
// TURN_HOST/TURN_PORT/TURN_SECRET variables, probes each server with a real TURN Allocate over
// each of its transports, and builds ICE server lists from the healthy
// servers only.
//
// Secrets are held in the Secret type, which prints as "[redacted]" through
// fmt, encoding/json and log/slog; ServerStatus, the public view of a
// server, has no secret fields at all.
package turn
