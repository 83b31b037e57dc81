package turn

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the scheme under test
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNewCredentials(t *testing.T) {
	// Passwords computed outside Go with:
	//   printf '%s' "$username" | openssl dgst -sha1 -hmac s3cret -binary | base64
	tests := []struct {
		name         string
		secret       Secret
		user         string
		ttl          time.Duration
		now          time.Time
		wantUsername string
		wantPassword string
		wantTTL      time.Duration
	}{
		{"one hour", "s3cret", "alice", time.Hour, time.Unix(1699996400, 0),
			"1700000000:alice", "TtElzSjT0GdnTQ9xdcRNxx96yQs=", time.Hour},
		{"default ttl and empty user", "s3cret", "", 0, time.Unix(0, 0),
			"86400:", "SX+XNYR5zD3xs+Ya4B4LKb7L274=", 24 * time.Hour},
		{"colons in user id", "s3cret", "user:with:colons", 24 * time.Hour, time.Unix(1893369600, 0),
			"1893456000:user:with:colons", "X+l5sfe7pO8C1SEVAKr25LNGWiI=", 24 * time.Hour},
		{"sub-second now is truncated", "s3cret", "alice", time.Hour, time.Unix(1699996400, 999_999_999),
			"1700000000:alice", "TtElzSjT0GdnTQ9xdcRNxx96yQs=", time.Hour},
		{"negative ttl means default", "s3cret", "", -time.Second, time.Unix(0, 0),
			"86400:", "SX+XNYR5zD3xs+Ya4B4LKb7L274=", 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCredentials(tt.secret, tt.user, tt.ttl, tt.now)
			if c.Username != tt.wantUsername {
				t.Errorf("Username = %q, want %q", c.Username, tt.wantUsername)
			}
			if c.Password != tt.wantPassword {
				t.Errorf("Password = %q, want %q", c.Password, tt.wantPassword)
			}
			if c.TTL != tt.wantTTL {
				t.Errorf("TTL = %v, want %v", c.TTL, tt.wantTTL)
			}
			ts, _, _ := strings.Cut(c.Username, ":")
			if exp, err := strconv.ParseInt(ts, 10, 64); err != nil || exp != c.Expires.Unix() {
				t.Errorf("username timestamp %q does not match Expires %v", ts, c.Expires)
			}
		})
	}
}

func TestNewCredentialsMatchesHMAC(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		secret Secret
		user   string
		ttl    time.Duration
	}{
		{"a", "u1", time.Minute},
		{"a much longer secret with spaces and ünïcode", "user-2", 12 * time.Hour},
		{Secret(strings.Repeat("k", 100)), "", 7 * 24 * time.Hour},
	} {
		c := NewCredentials(tt.secret, tt.user, tt.ttl, now)
		wantUser := strconv.FormatInt(now.Add(tt.ttl).Unix(), 10) + ":" + tt.user
		mac := hmac.New(sha1.New, []byte(string(tt.secret)))
		mac.Write([]byte(wantUser))
		wantPass := base64.StdEncoding.EncodeToString(mac.Sum(nil))
		if c.Username != wantUser || c.Password != wantPass {
			t.Errorf("NewCredentials(%q, %v) = %q/%q, want %q/%q", tt.user, tt.ttl, c.Username, c.Password, wantUser, wantPass)
		}
		if d := c.Expires.Sub(now); d > tt.ttl || d < tt.ttl-time.Second {
			t.Errorf("Expires - now = %v, want about %v", d, tt.ttl)
		}
	}
}
