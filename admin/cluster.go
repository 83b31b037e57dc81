package admin

import (
	"context"
	"net/http"

	pb "github.com/caasd/caasd/actors/actorspb"
	"github.com/caasd/caasd/cluster"
	"github.com/caasd/caasd/internal/auth"
)

// MemberList is the cluster's current view.
type MemberList interface {
	View() *cluster.View
	Self() cluster.Member
}

// StatsSource asks a node for its counts.
type StatsSource interface {
	NodeStats(ctx context.Context, addr string) (*pb.NodeStats, error)
}

// Cluster serves GET /v1/admin/cluster: the members and what each holds.
type Cluster struct {
	Members  MemberList
	Stats    StatsSource
	Verifier *auth.Verifier
}

// Register adds the cluster view to mux.
func (h *Cluster) Register(mux *http.ServeMux) {
	mux.Handle("GET /v1/admin/cluster", RequireRole(h.Verifier, auth.RoleAdmin)(http.HandlerFunc(h.get)))
}

type memberView struct {
	cluster.Member
	State       string `json:"state"`
	Self        bool   `json:"self"`
	Rooms       int64  `json:"rooms"`
	Calls       int64  `json:"calls"`
	Connections int64  `json:"connections"`
	Error       string `json:"error,omitempty"`
}

func (h *Cluster) get(w http.ResponseWriter, r *http.Request) {
	v := h.Members.View()
	self := h.Members.Self()
	out := make([]memberView, 0, len(v.Members))
	for _, m := range v.Members {
		mv := memberView{Member: m, State: "alive", Self: m.ID == self.ID}
		if st, err := h.Stats.NodeStats(r.Context(), m.RemoteAddr); err != nil {
			mv.State, mv.Error = "unreachable", err.Error()
		} else {
			mv.Rooms, mv.Calls, mv.Connections = st.Rooms, st.Calls, st.Connections
		}
		out = append(out, mv)
	}
	writeJSON(w, http.StatusOK, map[string]any{"node": self.ID, "members": out, "version": v.Version})
}
