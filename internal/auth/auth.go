// Package auth verifies and mints the HS256 JWTs that identify caasd users.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Role names with a meaning to caasd.
const (
	RoleAdmin = "admin"
)

// Principal is the authenticated caller: a user of one tenant.
type Principal struct {
	UserID   string
	TenantID string
	Roles    []string
	Expiry   time.Time
}

// HasRole reports whether the principal holds role.
func (p Principal) HasRole(role string) bool { return slices.Contains(p.Roles, role) }

// ErrNoToken means the request carried no token.
var ErrNoToken = errors.New("auth: no token")

// ErrInvalidToken means the token is malformed, badly signed, expired or lacks a claim.
var ErrInvalidToken = errors.New("auth: invalid token")

type claims struct {
	TenantID string   `json:"tenant_id"`
	Roles    []string `json:"roles"`
	jwt.RegisteredClaims
}

// Verifier checks tokens signed with one HS256 secret.
type Verifier struct {
	secret []byte
	parser *jwt.Parser
	now    func() time.Time
}

// NewVerifier returns a Verifier for secret.
func NewVerifier(secret string) *Verifier {
	v := &Verifier{secret: []byte(secret), now: time.Now}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	return v
}

// Verify parses token and returns its principal.
func (v *Verifier) Verify(token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrNoToken
	}
	var c claims
	_, err := v.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return v.secret, nil })
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Subject == "" || c.TenantID == "" {
		return Principal{}, fmt.Errorf("%w: sub and tenant_id are required", ErrInvalidToken)
	}
	if len(c.Subject) > 128 || len(c.TenantID) > 128 {
		return Principal{}, fmt.Errorf("%w: sub or tenant_id too long", ErrInvalidToken)
	}
	return Principal{UserID: c.Subject, TenantID: c.TenantID, Roles: c.Roles, Expiry: c.ExpiresAt.Time}, nil
}

// FromRequest takes the token from "Authorization: Bearer …" or "?token=".
func FromRequest(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
	}
	return r.URL.Query().Get("token")
}

// Mint signs a token for p valid for ttl. caasd uses it for the demo tokens
// it prints; tests use it to make users.
func Mint(secret string, p Principal, ttl time.Duration) (string, error) {
	now := time.Now()
	c := claims{
		TenantID: p.TenantID,
		Roles:    p.Roles,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   p.UserID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return s, nil
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// PrincipalFrom returns the principal stored by WithPrincipal.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}
