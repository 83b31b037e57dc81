package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/persistence"
)

// Demo identifiers created on the embedded default.
const (
	DemoTenant       = "demo"
	DemoConversation = "conv-001"
)

// DemoTokens are ready-to-use JWTs for the demo users.
type DemoTokens struct {
	Alice, Bob, Admin string
}

// SetupDemo creates the demo conversation (alice owner, bob member) if it
// does not exist and mints a token for each demo user and for an admin.
func (s *Server) SetupDemo(ctx context.Context) (DemoTokens, error) {
	convs := persistence.NewConversations(s.db, s.rdb, s.cfg.Rooms.AuthzCacheTTL, s.metrics)
	err := convs.Create(ctx, &persistence.Conversation{
		TenantID: DemoTenant, ConversationID: DemoConversation, Name: "Demo conversation",
		Participants: []persistence.Participant{{UserID: "alice", Role: "owner"}, {UserID: "bob", Role: "member"}},
	})
	if err != nil && !errors.Is(err, persistence.ErrConflict) {
		return DemoTokens{}, fmt.Errorf("demo conversation: %w", err)
	}
	mint := func(user string, roles ...string) (string, error) {
		return auth.Mint(s.cfg.JWTSecret, auth.Principal{UserID: user, TenantID: DemoTenant, Roles: roles}, 30*24*time.Hour)
	}
	var t DemoTokens
	if t.Alice, err = mint("alice", "user"); err != nil {
		return t, err
	}
	if t.Bob, err = mint("bob", "user"); err != nil {
		return t, err
	}
	if t.Admin, err = mint("demo-admin", "admin"); err != nil {
		return t, err
	}
	return t, nil
}
