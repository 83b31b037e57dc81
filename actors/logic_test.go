package actors

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caasd/caasd/internal/config"
	"github.com/caasd/caasd/internal/wire"
)

func limits() config.Limits {
	return config.Limits{MaxTextChars: 10, PerMinute: 3, PerHour: 5, SpamRepeat: 2, SpamWindow: time.Minute,
		ProhibitedPatterns: []*regexp.Regexp{regexp.MustCompile(`(?i)casino`)}}
}

func TestValidateSend(t *testing.T) {
	cases := []struct {
		name    string
		msg     wire.SendMessage
		code    wire.Code
		wantErr bool
	}{
		{"ok", wire.SendMessage{MessageID: "m", ConversationID: "c", Content: json.RawMessage(`{"type":"text","text":"hi"}`)}, "", false},
		{"image without text", wire.SendMessage{MessageID: "m", ConversationID: "c", Content: json.RawMessage(`{"type":"image","url":"x"}`)}, "", false},
		{"no id", wire.SendMessage{ConversationID: "c", Content: json.RawMessage(`{"type":"text","text":"hi"}`)}, wire.CodeInvalidMessage, true},
		{"slash in id", wire.SendMessage{MessageID: "a/b", ConversationID: "c", Content: json.RawMessage(`{"type":"text","text":"hi"}`)}, wire.CodeInvalidMessage, true},
		{"array content", wire.SendMessage{MessageID: "m", ConversationID: "c", Content: json.RawMessage(`[1]`)}, wire.CodeInvalidMessage, true},
		{"bad type", wire.SendMessage{MessageID: "m", ConversationID: "c", Content: json.RawMessage(`{"type":"exe"}`)}, wire.CodeInvalidMessage, true},
		{"long text", wire.SendMessage{MessageID: "m", ConversationID: "c", Content: json.RawMessage(`{"type":"text","text":"` + strings.Repeat("é", 11) + `"}`)}, wire.CodeTooLarge, true},
		{"prohibited", wire.SendMessage{MessageID: "m", ConversationID: "c", Content: json.RawMessage(`{"type":"text","text":"CASINO"}`)}, wire.CodeInvalidMessage, true},
	}
	l := limits()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, werr := validateSend(&tc.msg, &l)
			if (werr != nil) != tc.wantErr || (werr != nil && werr.Code != tc.code) {
				t.Fatalf("got %v, want code %q", werr, tc.code)
			}
		})
	}
}

func TestRateLimiterWindowsAndSpam(t *testing.T) {
	r := NewRateLimiter(limits(), 2)
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	for i, text := range []string{"a", "a", "a"} {
		werr := r.Allow("u", text)
		if i < 2 && werr != nil || i == 2 && (werr == nil || !strings.Contains(werr.Message, "same text")) {
			t.Fatalf("send %d of the same text: %v", i, werr)
		}
	}
	if werr := r.Allow("u", "b"); werr != nil {
		t.Fatalf("third message: %v", werr)
	}
	if werr := r.Allow("u", "c"); werr == nil || werr.Code != wire.CodeRateLimited {
		t.Fatalf("fourth message in a minute: %v", werr)
	}
	now = now.Add(61 * time.Second)
	if werr := r.Allow("u", "d"); werr != nil {
		t.Fatalf("next minute: %v", werr)
	}
	r.Allow("u", "e")
	if werr := r.Allow("u", "f"); werr == nil || !strings.Contains(werr.Message, "hour") {
		t.Fatalf("sixth in the hour: %v", werr)
	}
	r.Allow("v", "x")
	if werr := r.Allow("w", "x"); werr == nil {
		t.Fatal("a third user was admitted into a table bounded to two")
	}
	r.sweep(now.Add(time.Hour))
	if werr := r.Allow("w", "x"); werr != nil {
		t.Fatalf("after the sweep: %v", werr)
	}
}

func TestSnapshotVersions(t *testing.T) {
	v1 := `{"v":1,"tenant":"t","conversation":"c","bans":{"eve":{"until":"2030-01-01T00:00:00Z","by":"mod","at":"2026-01-01T00:00:00Z"}},"counters":{"messages":3}}`
	s, err := decodeSnapshot([]byte(v1))
	if err != nil || s.Bans["eve"].By != "mod" || s.Counters.Messages != 3 {
		t.Fatalf("v1: %+v %v", s, err)
	}
	if _, err := decodeSnapshot([]byte(`{"v":99}`)); !errors.Is(err, errSnapshotVersion) {
		t.Fatalf("future version: %v", err)
	}
	if _, err := decodeSnapshot([]byte(`garbage`)); err == nil {
		t.Fatal("garbage decoded")
	}
}
