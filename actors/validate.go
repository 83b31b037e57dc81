package actors

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/caasd/caasd/internal/config"
	"github.com/caasd/caasd/internal/wire"
)

// contentTypes are the message content types caasd accepts, and whether
// each one requires a text.
var contentTypes = map[string]bool{
	"text": true, "image": false, "file": false, "audio": false, "video": false, "location": false,
}

// validateSend checks a sendMessage before anything is sent on: structure,
// ids, content type and text, and the prohibited patterns. It returns the
// content's text.
func validateSend(m *wire.SendMessage, limits *config.Limits) (string, *wire.Error) {
	if !wire.ValidID(m.MessageID) {
		return "", wire.Errorf(wire.CodeInvalidMessage, "message_id is required: 1–128 printable characters")
	}
	if !wire.ValidID(m.ConversationID) {
		return "", wire.Errorf(wire.CodeInvalidMessage, "conversation_id is required: 1–128 printable characters")
	}
	trimmed := bytes.TrimSpace(m.Content)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return "", wire.Errorf(wire.CodeInvalidMessage, "content must be an object {type, text, …}")
	}
	var c wire.Content
	if err := wire.DecodeContent(trimmed, &c); err != nil {
		return "", wire.Errorf(wire.CodeInvalidMessage, "content: "+err.Error())
	}
	needsText, ok := contentTypes[c.Type]
	if !ok {
		return "", wire.Errorf(wire.CodeInvalidMessage, fmt.Sprintf("content.type %q is not one of text, image, file, audio, video, location", c.Type))
	}
	if needsText && c.Text == "" {
		return "", wire.Errorf(wire.CodeInvalidMessage, "content.text is required for type text")
	}
	if n := utf8.RuneCountInString(c.Text); n > limits.MaxTextChars {
		return "", wire.Errorf(wire.CodeTooLarge, fmt.Sprintf("content.text has %d characters; the limit is %d", n, limits.MaxTextChars))
	}
	for _, re := range limits.ProhibitedPatterns {
		if re.MatchString(c.Text) {
			return "", wire.Errorf(wire.CodeInvalidMessage, "content.text contains prohibited content")
		}
	}
	m.Content = trimmed
	return c.Text, nil
}
