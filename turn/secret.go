package turn

import (
	"fmt"
	"log/slog"
)

// redacted is what every printing path shows instead of a secret.
const redacted = "[redacted]"

// Secret is a TURN shared secret (coturn's static-auth-secret). Its
// String, GoString, Format, MarshalJSON, MarshalText and LogValue methods
// all print "[redacted]", so a Secret never leaks through fmt, encoding/json
// or log/slog, even when it is nested in a struct. Use Reveal to get the
// real value.
type Secret string

// Reveal returns the secret value. Call it only to compute an HMAC.
func (s Secret) Reveal() string { return string(s) }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s == "" }

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// GoString returns "[redacted]".
func (Secret) GoString() string { return redacted }

// Format prints "[redacted]" for every verb and flag.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON returns the JSON string "[redacted]".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[redacted]".
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue implements slog.LogValuer and returns "[redacted]".
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
