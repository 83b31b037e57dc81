package turn

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what the TURN REST API and coturn use.
	"encoding/base64"
	"strconv"
	"time"
)

// DefaultCredentialTTL is the credential lifetime used when none is set.
const DefaultCredentialTTL = 24 * time.Hour

// Credentials are ephemeral TURN REST API credentials, as checked by
// coturn's --use-auth-secret mode. They are meant to be handed to clients;
// they are not secret in the sense of Secret, but expire.
type Credentials struct {
	// Username is "<expiry unix time>:<user id>".
	Username string `json:"username"`
	// Password is base64(HMAC-SHA1(secret, Username)).
	Password string `json:"credential"`
	// Expires is the expiry time encoded in Username.
	Expires time.Time `json:"expires"`
	// TTL is the lifetime the credentials were minted with.
	TTL time.Duration `json:"-"`
}

// NewCredentials mints TURN REST API credentials for userID that expire
// ttl after now (ttl <= 0 means DefaultCredentialTTL), signed with secret.
// The expiry is truncated to whole seconds. userID should be a short opaque
// identifier; coturn takes the timestamp from the part of the username
// before the first ':', so a ':' inside userID is harmless.
func NewCredentials(secret Secret, userID string, ttl time.Duration, now time.Time) Credentials {
	if ttl <= 0 {
		ttl = DefaultCredentialTTL
	}
	expires := now.Add(ttl).Truncate(time.Second)
	username := strconv.FormatInt(expires.Unix(), 10) + ":" + userID
	return Credentials{
		Username: username,
		Password: credentialPassword(secret, username),
		Expires:  expires,
		TTL:      ttl,
	}
}

// credentialPassword returns base64(HMAC-SHA1(secret, username)).
func credentialPassword(secret Secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret.Reveal()))
	mac.Write([]byte(username)) // hash.Hash.Write never fails.
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
