package socketio

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/caasd/caasd/transport"
)

// enter claims the session's one pending request of a kind (active: the
// GET or the POST flag). It returns with s.mu held; false after answering
// the request with an error (a second pending one closes the session).
func (s *session) enter(w http.ResponseWriter, active *bool, method, what string) bool {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		unknownSession(w)
		return false
	case s.mode != modePolling:
		s.mu.Unlock()
		badRequest(w, fmt.Errorf("%w: the session was upgraded to websocket", ErrBadRequest))
		return false
	case *active:
		s.mu.Unlock()
		badRequest(w, fmt.Errorf("%w: a %s is already pending; the session is closed", ErrOverlap, method))
		s.close(transport.ClosePolicy, "overlapping "+what, byServer)
		return false
	}
	*active = true
	return true
}

// poll answers a long-polling GET with every packet waiting, joined by
// 0x1e, as soon as there is one.
func (s *session) poll(w http.ResponseWriter, r *http.Request) {
	if !s.enter(w, &s.pollActive, "GET", "polls") {
		return
	}
	select { // a stale wake-up from before this poll
	case <-s.pollWake:
	default:
	}
	timer := time.NewTimer(s.srv.cfg.PingInterval + s.srv.cfg.PingTimeout)
	defer timer.Stop()
	timedOut := false
	for !timedOut && !s.closed && len(s.queue) == 0 && !s.upgrading && s.mode == modePolling {
		s.mu.Unlock()
		select {
		case <-s.pollWake:
		case <-timer.C:
			timedOut = true
		case <-r.Context().Done():
			s.mu.Lock()
			s.pollActive = false
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
	}
	var frames []*transport.Frame
	var body []byte
	switch {
	case s.closed:
		body = s.farewell
	case s.mode == modePolling && len(s.queue) > 0:
		frames, s.queue = s.queue, nil
	default: // upgrading, upgraded, or nothing for a long time
		body = []byte{eioNoop}
	}
	s.pollActive = false
	s.mu.Unlock()

	if len(frames) > 0 {
		n := len(frames) - 1
		for _, f := range frames {
			n += len(encoded(f))
		}
		body = make([]byte, 0, n)
		for i, f := range frames {
			if i > 0 {
				body = append(body, payloadSep)
			}
			body = append(body, encoded(f)...)
		}
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.srv.cfg.WriteTimeout))
	writeText(w, "text/plain; charset=UTF-8", body)
}

// post handles a long-polling POST: a payload of packets from the client.
func (s *session) post(w http.ResponseWriter, r *http.Request) {
	if !s.enter(w, &s.postActive, "POST", "posts") {
		return
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.postActive = false
		s.mu.Unlock()
	}()

	limit := s.srv.cfg.MaxPayloadBytes
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.srv.cfg.WriteTimeout))
	if r.ContentLength > int64(limit) {
		s.tooLarge(w, r.ContentLength)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.tooLarge(w, -1)
			return
		}
		badRequest(w, fmt.Errorf("%w: reading the body: %w", ErrBadRequest, err))
		return
	}
	pkts, err := decodePayload(body)
	if err == nil {
		err = s.receive(pkts)
	}
	if err != nil {
		s.srv.logger.Debug("malformed engine.io payload", "sid", s.sid, "err", err)
		badRequest(w, fmt.Errorf("%w; the session is closed", err))
		s.close(closeProtocolError, "malformed packet", byServer)
		return
	}
	writeText(w, "text/html", []byte("ok"))
}

// tooLarge refuses a body above MaxPayloadBytes and closes the session,
// as the Engine.IO reference server does.
func (s *session) tooLarge(w http.ResponseWriter, n int64) {
	size := "more than"
	if n >= 0 {
		size = fmt.Sprint(n, " bytes, more than")
	}
	httpError(w, http.StatusRequestEntityTooLarge, eioErrBadRequest, "Payload too large",
		fmt.Errorf("%w: %s maxPayload (%d bytes); the session is closed", ErrPayloadTooLarge, size, s.srv.cfg.MaxPayloadBytes))
	s.close(transport.CloseTooBig, "payload too large", byServer)
}
