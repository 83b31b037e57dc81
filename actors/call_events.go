package actors

import (
	"crypto/rand"
	"encoding/hex"

	pb "github.com/caasd/caasd/actors/actorspb"
	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/turn"
)

// callEvents registers the WebRTC events: ICE servers, calls, signalling
// and recording consent.
func callEvents(t map[string]eventFunc) {
	t[wire.EvICEServers] = (*connActor).iceServers
	t[wire.EvCallStart] = (*connActor).callStart
	t[wire.EvCallJoin] = (*connActor).callJoin
	t[wire.EvCallLeave] = (*connActor).callLeave
	t[wire.EvCallEnd] = (*connActor).callEnd
	t[wire.EvCallSignal] = (*connActor).callSignal
	t[wire.EvRecordingRequest] = (*connActor).recordingRequest
	t[wire.EvRecordingConsent] = (*connActor).recordingConsent
	t[wire.EvRecordingStop] = (*connActor).recordingStop
	t[wire.EvRecordingQuality] = (*connActor).recordingQuality
}

// iceServers answers webrtc:ice-servers with the healthy servers and
// credentials minted for the user.
func (a *connActor) iceServers(m *inbound) {
	list := turn.ICEServers{ICEServers: []turn.ICEServer{}}
	if a.e.deps.ICE != nil {
		list = a.e.deps.ICE.ICEServers(a.user.UserId)
	}
	a.send(m.ack, wire.EvICEServers, list)
}

func (a *connActor) callError(ack uint64, callID string, code wire.Code, msg string) {
	a.send(ack, wire.EvCallError, wire.CallError{CallID: callID, Code: code, Message: msg})
}

func (a *connActor) callKey(id string) callKey { return callKey{a.user.TenantId, id} }

// newCallID returns a random call id.
func newCallID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "call_" + hex.EncodeToString(b[:])
}

func (a *connActor) callStart(m *inbound) {
	var req wire.CallStart
	if err := decode(m.data, &req); err != nil || !wire.ValidID(req.ConversationID) || (req.CallID != "" && !wire.ValidID(req.CallID)) {
		a.callError(m.ack, req.CallID, wire.CodeInvalidMessage, "call:start needs {conversation_id, call_id?, media}")
		return
	}
	switch req.Media {
	case "":
		req.Media = wire.MediaAudio
	case wire.MediaAudio, wire.MediaVideo:
	default:
		a.callError(m.ack, req.CallID, wire.CodeInvalidMessage, "media must be audio or video")
		return
	}
	if req.CallID == "" {
		req.CallID = newCallID()
	}
	k := a.callKey(req.CallID)
	if !a.e.calls.track(a.ref.ConnId, k) {
		a.callError(m.ack, req.CallID, wire.CodeRateLimited, "a connection may be in at most 8 calls")
		return
	}
	a.e.calls.route(k, &pb.CallStart{User: a.user, Conn: a.ref, Ack: m.ack, ConversationId: req.ConversationID, Media: req.Media})
}

// callRef decodes the {call_id} of an event; false after an error reply.
func (a *connActor) callRef(m *inbound, v any, id func() string) bool {
	if err := decode(m.data, v); err != nil || !wire.ValidID(id()) {
		a.callError(m.ack, id(), wire.CodeInvalidMessage, m.name+" needs {call_id, …}")
		return false
	}
	return true
}

// toCall sends msg to the call on the node that owns it; that node
// answers not_found when the call is not active.
func (a *connActor) toCall(id string, msg any) {
	a.e.calls.route(a.callKey(id), msg)
}

func (a *connActor) callJoin(m *inbound) {
	var req wire.CallRef
	if !a.callRef(m, &req, func() string { return req.CallID }) {
		return
	}
	k := a.callKey(req.CallID)
	if !a.e.calls.track(a.ref.ConnId, k) {
		a.callError(m.ack, req.CallID, wire.CodeRateLimited, "a connection may be in at most 8 calls")
		return
	}
	a.e.calls.route(k, &pb.CallJoin{User: a.user, Conn: a.ref, Ack: m.ack})
}

func (a *connActor) callLeave(m *inbound) {
	var req wire.CallRef
	if !a.callRef(m, &req, func() string { return req.CallID }) {
		return
	}
	a.e.calls.untrack(a.ref.ConnId, a.callKey(req.CallID))
	a.toCall(req.CallID, &pb.CallLeave{User: a.user, Conn: a.ref, Ack: m.ack})
}

func (a *connActor) callEnd(m *inbound) {
	var req wire.CallRef
	if !a.callRef(m, &req, func() string { return req.CallID }) {
		return
	}
	a.toCall(req.CallID, &pb.CallEnd{User: a.user, Conn: a.ref, Ack: m.ack})
}

func (a *connActor) callSignal(m *inbound) {
	var req wire.CallSignal
	if !a.callRef(m, &req, func() string { return req.CallID }) {
		return
	}
	switch {
	case !wire.ValidID(req.To):
		a.callError(m.ack, req.CallID, wire.CodeInvalidMessage, "call:signal needs {to}: the user id of a participant")
		return
	case req.Type != wire.SignalOffer && req.Type != wire.SignalAnswer && req.Type != wire.SignalCandidate:
		a.callError(m.ack, req.CallID, wire.CodeInvalidMessage, "call:signal type must be offer, answer or candidate")
		return
	case len(req.Payload) == 0 || string(req.Payload) == "null":
		a.callError(m.ack, req.CallID, wire.CodeInvalidMessage, "call:signal needs a payload")
		return
	}
	a.toCall(req.CallID, &pb.CallSignal{User: a.user, Conn: a.ref, Ack: m.ack, To: req.To, Type: req.Type, Payload: req.Payload})
}

func (a *connActor) recordingRequest(m *inbound) {
	var req wire.CallRef
	if !a.callRef(m, &req, func() string { return req.CallID }) {
		return
	}
	a.toCall(req.CallID, &pb.RecordingRequest{User: a.user, Conn: a.ref, Ack: m.ack})
}

func (a *connActor) recordingConsent(m *inbound) {
	var req wire.RecordingConsent
	if !a.callRef(m, &req, func() string { return req.CallID }) {
		return
	}
	if !wire.ValidID(req.RecordingID) || req.Granted == nil {
		a.callError(m.ack, req.CallID, wire.CodeInvalidMessage, "call:recording:consent needs {call_id, recording_id, granted}")
		return
	}
	a.toCall(req.CallID, &pb.RecordingConsent{User: a.user, Conn: a.ref, Ack: m.ack, RecordingId: req.RecordingID, Granted: *req.Granted})
}

func (a *connActor) recordingStop(m *inbound) {
	var req wire.RecordingStop
	if !a.callRef(m, &req, func() string { return req.CallID }) {
		return
	}
	if req.RecordingID != "" && !wire.ValidID(req.RecordingID) {
		a.callError(m.ack, req.CallID, wire.CodeInvalidMessage, "recording_id is not valid")
		return
	}
	a.toCall(req.CallID, &pb.RecordingStop{User: a.user, Conn: a.ref, Ack: m.ack, RecordingId: req.RecordingID})
}

func (a *connActor) recordingQuality(m *inbound) {
	var req wire.RecordingQuality
	if !a.callRef(m, &req, func() string { return req.CallID }) {
		return
	}
	if !wire.ValidID(req.RecordingID) || req.BitrateKbps == nil || req.PacketLoss == nil || req.JitterMs == nil {
		a.callError(m.ack, req.CallID, wire.CodeInvalidMessage, "call:recording:quality needs {call_id, recording_id, bitrate_kbps, packet_loss, jitter_ms}")
		return
	}
	a.toCall(req.CallID, &pb.RecordingQuality{
		User: a.user, Conn: a.ref, Ack: m.ack, RecordingId: req.RecordingID,
		BitrateKbps: *req.BitrateKbps, PacketLoss: *req.PacketLoss, JitterMs: *req.JitterMs,
	})
}
