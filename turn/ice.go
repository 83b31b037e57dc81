package turn

// ICEServer is one entry of an RTCConfiguration's iceServers list.
type ICEServer struct {
	// URLs are stun:, turn: or turns: URLs of one server.
	URLs []string `json:"urls"`
	// Username is the TURN REST username; empty for STUN entries.
	Username string `json:"username,omitempty"`
	// Credential is the TURN REST password; empty for STUN entries.
	Credential string `json:"credential,omitempty"`
}

// ICEServers is the ICE server list handed to a client. ICEServers is
// never nil, so it marshals as [] when no server is healthy. TTL is the
// credential lifetime in seconds.
type ICEServers struct {
	// ICEServers lists the STUN entries first, then the TURN entries.
	ICEServers []ICEServer `json:"ice_servers"`
	// TTL is the credential lifetime in seconds.
	TTL int64 `json:"ttl"`
}

// ICEServers returns the ICE servers of the healthy servers for userID: a
// {"urls":["stun:host:port"]} entry per server first, then one TURN entry
// per server with all its turn:/turns: URLs and credentials minted with
// that server's current secret. Each minted credential increments
// turn_credentials_generated_total.
func (r *Registry) ICEServers(userID string) ICEServers {
	now := r.cfg.Now()
	r.mu.Lock()
	var stun, turn []ICEServer
	for _, s := range r.servers {
		if !s.healthy {
			continue
		}
		stun = append(stun, ICEServer{URLs: []string{s.cfg.STUNURL()}})
		cred := NewCredentials(s.cfg.Secret, userID, r.cfg.CredentialTTL, now)
		turn = append(turn, ICEServer{URLs: s.cfg.TURNURLs(), Username: cred.Username, Credential: cred.Password})
	}
	r.mu.Unlock()
	r.mCredentials.Add(float64(len(turn)))
	return ICEServers{
		ICEServers: append(append(make([]ICEServer, 0, len(stun)+len(turn)), stun...), turn...),
		TTL:        int64(r.cfg.CredentialTTL.Seconds()),
	}
}
