package transport

import (
	"crypto/sha1" //nolint:gosec // RFC 6455 names SHA-1 for the accept key
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// websocketGUID is RFC 6455's fixed key suffix.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// checkUpgrade checks an upgrade request (RFC 6455 §4.2.1) and returns its
// Sec-WebSocket-Key.
func checkUpgrade(r *http.Request) (string, error) {
	switch {
	case r.Method != http.MethodGet:
		return "", errors.New("websocket upgrade must be a GET")
	case !headerHasToken(r.Header, "Connection", "upgrade"):
		return "", errors.New(`"Connection: Upgrade" header required`)
	case !headerHasToken(r.Header, "Upgrade", "websocket"):
		return "", errors.New(`"Upgrade: websocket" header required`)
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return "", errors.New("Sec-WebSocket-Version 13 required")
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 16 {
		return "", errors.New("Sec-WebSocket-Key must be 16 bytes in base64")
	}
	return key, nil
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// acceptKey is the Sec-WebSocket-Accept answer to key.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + websocketGUID)) //nolint:gosec
	return base64.StdEncoding.EncodeToString(h[:])
}

// hijack takes the connection from the HTTP server and answers 101. It
// returns the socket and any bytes the client sent after its request.
func hijack(w http.ResponseWriter, key string) (net.Conn, []byte, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("response writer cannot hijack")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	var buffered []byte
	if n := brw.Reader.Buffered(); n > 0 {
		p, _ := brw.Reader.Peek(n)
		buffered = append([]byte(nil), p...)
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptKey(key) + "\r\n\r\n"
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(resp)); err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("write 101: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, buffered, nil
}
