package actors

import (
	"errors"
	"time"

	pb "github.com/caasd/caasd/actors/actorspb"
	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/persistence"
)

// callRecording is the recording a call requested or runs. Recording
// needs the consent of every participant present: it starts only when
// all of them granted, a refusal or the consent timeout rejects it, and a
// participant who joins while it runs must consent in time or it stops.
type callRecording struct {
	id          string
	requestedBy string
	status      string // persistence.RecordingRequested or RecordingActive
	parts       []persistence.RecordingParticipant
	startedAt   *time.Time
	// timers are the consent deadlines: "" for the request, a user id
	// for a participant who joined while recording.
	timers map[string]*time.Timer
}

// consentExpired is a consent deadline firing (a local timer message).
type consentExpired struct{ recordingID, userID string }

func (r *callRecording) part(user string) *persistence.RecordingParticipant {
	for i := range r.parts {
		if r.parts[i].UserID == user {
			return &r.parts[i]
		}
	}
	return nil
}

func (r *callRecording) stopTimer(key string) {
	if t, ok := r.timers[key]; ok {
		t.Stop()
		delete(r.timers, key)
	}
}

// after sends msg to the call after d.
func (c *call) after(d time.Duration, msg any) *time.Timer {
	root, self := c.e.system.Root, c.self
	return time.AfterFunc(d, func() { root.Send(self, msg) })
}

// save stores a change of the current recording; failures are logged.
func (c *call) save(u persistence.RecordingUpdate) error {
	r := c.rec
	u.TenantID, u.RecordingID, u.CallID, u.ConversationID = c.key.tenant, r.id, c.key.call, c.conv
	u.Participants = append([]persistence.RecordingParticipant(nil), r.parts...)
	ctx, cancel := c.storeCtx()
	defer cancel()
	err := c.e.deps.Recordings.Update(ctx, u)
	if err != nil {
		c.e.deps.Logger.Warn("recording update failed", "tenant", c.key.tenant, "call", c.key.call, "recording_id", r.id, "event", u.Event, "err", err)
	}
	return err
}

func (c *call) consentRequest() wire.ConsentRequested {
	return wire.ConsentRequested{CallID: c.key.call, RecordingID: c.rec.id, RequestedBy: c.rec.requestedBy, TimeoutMs: c.e.consentTimeout().Milliseconds()}
}

func (c *call) requestRecording(m *pb.RecordingRequest) {
	p, ok := c.member(m.Conn, m.Ack)
	if !ok {
		return
	}
	if c.e.deps.Recordings == nil {
		c.fail(p.t, m.Ack, wire.CodeUnavailable, "recording is not available on this server")
		return
	}
	if c.rec != nil {
		c.fail(p.t, m.Ack, wire.CodeInvalidMessage, "recording "+c.rec.id+" is already "+c.rec.status)
		return
	}
	now := time.Now().UTC()
	r := &callRecording{id: persistence.NewRecordingID(now), requestedBy: p.userID, status: persistence.RecordingRequested, timers: map[string]*time.Timer{}}
	for _, u := range c.participants() {
		rp := persistence.RecordingParticipant{UserID: u.UserID, Consent: persistence.ConsentPending, AddedAt: now}
		if u.UserID == p.userID { // asking is consenting
			rp.Consent, rp.ConsentAt = persistence.ConsentGranted, &now
		}
		r.parts = append(r.parts, rp)
	}
	ctx, cancel := c.storeCtx()
	err := c.e.deps.Recordings.Create(ctx, &persistence.Recording{
		RecordingID: r.id, TenantID: c.key.tenant, CallID: c.key.call, ConversationID: c.conv, RequestedBy: p.userID,
		Participants: append([]persistence.RecordingParticipant(nil), r.parts...), Status: persistence.RecordingRequested, RequestedAt: &now,
	})
	cancel()
	if err != nil {
		c.e.deps.Logger.Warn("recording request not stored", "tenant", c.key.tenant, "call", c.key.call, "err", err)
		c.fail(p.t, m.Ack, wire.CodeUnavailable, "recording metadata could not be stored; try again")
		return
	}
	c.rec = r
	r.timers[""] = c.after(c.e.consentTimeout(), &consentExpired{recordingID: r.id})
	c.broadcast(wire.EvRecordingConsentRequested, c.consentRequest(), m.Conn.ConnId, m.Ack)
	c.maybeStart()
}

func (c *call) consent(m *pb.RecordingConsent) {
	p, ok := c.member(m.Conn, m.Ack)
	if !ok {
		return
	}
	r := c.rec
	if r == nil || r.id != m.RecordingId {
		c.fail(p.t, m.Ack, wire.CodeNotFound, "no such recording request in this call")
		return
	}
	rp := r.part(p.userID)
	if rp == nil {
		c.fail(p.t, m.Ack, wire.CodeNotMember, "not asked to consent to this recording")
		return
	}
	if m.Granted && rp.Consent == persistence.ConsentGranted {
		return // said twice
	}
	now := time.Now().UTC()
	rp.ConsentAt = &now
	rp.Consent = persistence.ConsentRefused
	if m.Granted {
		rp.Consent = persistence.ConsentGranted
	}
	r.stopTimer(p.userID)
	_ = c.save(persistence.RecordingUpdate{Event: persistence.EventRecordingConsent, UserID: p.userID, Consent: rp.Consent})
	if !m.Granted {
		c.endRecording(wire.ReasonConsentRefused, p.userID)
		return
	}
	c.maybeStart()
}

// maybeStart starts a requested recording once every participant present
// granted consent.
func (c *call) maybeStart() {
	r := c.rec
	if r == nil || r.status != persistence.RecordingRequested || len(c.conns) == 0 {
		return
	}
	present := c.participants()
	ids := make([]string, len(present))
	for i, u := range present {
		if rp := r.part(u.UserID); rp == nil || rp.Consent != persistence.ConsentGranted {
			return
		}
		ids[i] = u.UserID
	}
	now := time.Now().UTC()
	r.stopTimer("")
	r.status, r.startedAt = persistence.RecordingActive, &now
	if err := c.save(persistence.RecordingUpdate{Event: persistence.EventRecordingStarted, Status: persistence.RecordingActive, StartedAt: &now}); err != nil {
		r.status, r.startedAt = persistence.RecordingRequested, nil
		c.endRecording(wire.ReasonStorageFailed, "")
		return
	}
	c.broadcast(wire.EvRecordingStarted, wire.RecordingStarted{CallID: c.key.call, RecordingID: r.id, StartedAt: now.Format(persistence.TimeFormat), Participants: ids}, "", 0)
}

// endRecording rejects a requested recording or stops a running one, and
// tells every participant.
func (c *call) endRecording(reason, user string) {
	r := c.rec
	for k := range r.timers {
		r.stopTimer(k)
	}
	u := persistence.RecordingUpdate{Reason: reason, UserID: user}
	name := wire.EvRecordingRejected
	if r.status == persistence.RecordingActive {
		now := time.Now().UTC()
		u.Event, u.Status, u.StartedAt, u.StoppedAt = persistence.EventRecordingStopped, persistence.RecordingStopped, r.startedAt, &now
		name = wire.EvRecordingStopped
	} else {
		u.Event, u.Status = persistence.EventRecordingRejected, persistence.RecordingRejected
	}
	_ = c.save(u)
	c.rec = nil
	c.broadcast(name, wire.RecordingEnded{CallID: c.key.call, RecordingID: r.id, Reason: reason, UserID: user}, "", 0)
}

func (c *call) stopRecording(m *pb.RecordingStop) {
	p, ok := c.member(m.Conn, m.Ack)
	if !ok {
		return
	}
	if c.rec == nil || (m.RecordingId != "" && m.RecordingId != c.rec.id) {
		c.fail(p.t, m.Ack, wire.CodeNotFound, "no recording to stop in this call")
		return
	}
	c.endRecording(wire.ReasonStoppedByUser, p.userID)
}

// recordingJoined asks a user who joined during a recording request or a
// recording for consent; while recording, the user has the consent
// timeout to grant it or the recording stops.
func (c *call) recordingJoined(user string) {
	r := c.rec
	if r == nil {
		return
	}
	rp := r.part(user)
	if rp != nil && rp.Consent == persistence.ConsentGranted {
		return // consented to this recording before leaving
	}
	if rp == nil {
		r.parts = append(r.parts, persistence.RecordingParticipant{UserID: user, Consent: persistence.ConsentPending, AddedAt: time.Now().UTC()})
	} else {
		rp.Consent, rp.ConsentAt = persistence.ConsentPending, nil
	}
	_ = c.save(persistence.RecordingUpdate{Event: persistence.EventRecordingParticipantAdded, UserID: user, Consent: persistence.ConsentPending})
	c.toUser(user, wire.EvRecordingConsentRequested, c.consentRequest())
	if r.status == persistence.RecordingActive {
		r.stopTimer(user)
		r.timers[user] = c.after(c.e.consentTimeout(), &consentExpired{recordingID: r.id, userID: user})
	}
}

// askAgain sends a pending consent request to a user's new connection.
func (c *call) askAgain(user string, t target) {
	if c.rec == nil {
		return
	}
	if rp := c.rec.part(user); rp != nil && rp.Consent == persistence.ConsentPending {
		c.reply(t, 0, wire.EvRecordingConsentRequested, c.consentRequest())
	}
}

// recordingLeft handles a user's leaving: their consent is no longer
// needed, which may complete a request.
func (c *call) recordingLeft(user string) {
	if c.rec == nil {
		return
	}
	c.rec.stopTimer(user)
	c.maybeStart()
}

func (c *call) consentExpired(m *consentExpired) {
	r := c.rec
	if r == nil || r.id != m.recordingID {
		return
	}
	delete(r.timers, m.userID)
	now := time.Now().UTC()
	if m.userID == "" {
		if r.status != persistence.RecordingRequested {
			return
		}
		for _, u := range c.participants() {
			if rp := r.part(u.UserID); rp != nil && rp.Consent == persistence.ConsentPending {
				rp.Consent, rp.ConsentAt = persistence.ConsentTimedOut, &now
			}
		}
		c.endRecording(wire.ReasonConsentTimeout, "")
		return
	}
	rp := r.part(m.userID)
	if r.status != persistence.RecordingActive || rp == nil || rp.Consent != persistence.ConsentPending || !c.hasUser(m.userID) {
		return
	}
	rp.Consent, rp.ConsentAt = persistence.ConsentTimedOut, &now
	c.endRecording(wire.ReasonConsentTimeout, m.userID)
}

// quality stores a quality report of this call's current or past recording.
func (c *call) quality(m *pb.RecordingQuality) {
	p, ok := c.member(m.Conn, m.Ack)
	if !ok {
		return
	}
	if c.e.deps.Recordings == nil {
		c.fail(p.t, m.Ack, wire.CodeUnavailable, "recording is not available on this server")
		return
	}
	ctx, cancel := c.storeCtx()
	defer cancel()
	if c.rec == nil || c.rec.id != m.RecordingId || c.rec.status != persistence.RecordingActive {
		rec, err := c.e.deps.Recordings.Get(ctx, c.key.tenant, m.RecordingId)
		if err != nil || rec.CallID != c.key.call || (rec.Status != persistence.RecordingActive && rec.Status != persistence.RecordingStopped) {
			c.fail(p.t, m.Ack, wire.CodeNotFound, "no such recording in this call")
			return
		}
	}
	q := persistence.QualitySample{BitrateKbps: m.BitrateKbps, PacketLoss: m.PacketLoss, JitterMs: m.JitterMs}
	_, err := c.e.deps.Recordings.AddQuality(ctx, c.key.tenant, m.RecordingId, q, p.userID)
	switch {
	case errors.Is(err, persistence.ErrInvalidRecording):
		c.fail(p.t, m.Ack, wire.CodeInvalidMessage, err.Error())
	case errors.Is(err, persistence.ErrNotFound):
		c.fail(p.t, m.Ack, wire.CodeNotFound, "no such recording in this call")
	case err != nil:
		c.e.deps.Logger.Warn("recording quality not stored", "recording_id", m.RecordingId, "err", err)
		c.fail(p.t, m.Ack, wire.CodeUnavailable, "quality report could not be stored; try again")
	}
}
