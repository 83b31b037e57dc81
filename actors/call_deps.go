package actors

import (
	"context"
	"time"

	"github.com/caasd/caasd/persistence"
	"github.com/caasd/caasd/turn"
)

// ICEProvider hands out ICE server lists with fresh TURN credentials
// (turn.Registry does).
type ICEProvider interface {
	ICEServers(userID string) turn.ICEServers
}

// RecordingStore keeps call recording metadata and publishes its changes
// (persistence.Recordings does).
type RecordingStore interface {
	Create(ctx context.Context, r *persistence.Recording) error
	Update(ctx context.Context, u persistence.RecordingUpdate) error
	Get(ctx context.Context, tenant, id string) (*persistence.Recording, error)
	AddQuality(ctx context.Context, tenant, id string, q persistence.QualitySample, by string) (*persistence.Recording, error)
}

// DefaultConsentTimeout is how long participants have to answer a
// recording consent request when Deps.ConsentTimeout is not set.
const DefaultConsentTimeout = 30 * time.Second

// consentTimeout returns the configured consent timeout or the default.
func (e *Engine) consentTimeout() time.Duration {
	if e.deps.ConsentTimeout > 0 {
		return e.deps.ConsentTimeout
	}
	return DefaultConsentTimeout
}
