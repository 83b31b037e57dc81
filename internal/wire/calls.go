package wire

import "encoding/json"

// WebRTC events: client → server.
const (
	EvICEServers       = "webrtc:ice-servers"
	EvCallStart        = "call:start"
	EvCallJoin         = "call:join"
	EvCallLeave        = "call:leave"
	EvCallEnd          = "call:end"
	EvCallSignal       = "call:signal"
	EvRecordingRequest = "call:recording:request"
	EvRecordingConsent = "call:recording:consent"
	EvRecordingStop    = "call:recording:stop"
	EvRecordingQuality = "call:recording:quality"
)

// WebRTC events: server → client. EvICEServers and EvCallSignal are also
// sent by the server, with the payloads ICEServers and CallSignalIn.
const (
	EvCallStarted               = "call:started"
	EvCallParticipantJoined     = "call:participant_joined"
	EvCallParticipantLeft       = "call:participant_left"
	EvCallEnded                 = "call:ended"
	EvCallError                 = "call:error"
	EvRecordingConsentRequested = "call:recording:consent_requested"
	EvRecordingStarted          = "call:recording:started"
	EvRecordingRejected         = "call:recording:rejected"
	EvRecordingStopped          = "call:recording:stopped"
)

// Media kinds of a call.
const (
	MediaAudio = "audio"
	MediaVideo = "video"
)

// Signal types relayed by call:signal.
const (
	SignalOffer     = "offer"
	SignalAnswer    = "answer"
	SignalCandidate = "candidate"
)

// CallStart is the data of call:start; an empty CallID lets the server
// choose one.
type CallStart struct {
	ConversationID string `json:"conversation_id"`
	CallID         string `json:"call_id,omitempty"`
	Media          string `json:"media"`
}

// CallRef is the data of call:join, call:leave, call:end and
// call:recording:request.
type CallRef struct {
	CallID string `json:"call_id"`
}

// CallSignal is the data of call:signal from a client.
type CallSignal struct {
	CallID  string          `json:"call_id"`
	To      string          `json:"to"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// CallSignalIn is the data of call:signal delivered to its recipient.
type CallSignalIn struct {
	CallID  string          `json:"call_id"`
	From    string          `json:"from"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// CallParticipant is one user in a call.
type CallParticipant struct {
	UserID   string `json:"user_id"`
	JoinedAt string `json:"joined_at"`
}

// CallStarted is the data of call:started.
type CallStarted struct {
	CallID         string            `json:"call_id"`
	ConversationID string            `json:"conversation_id"`
	Media          string            `json:"media"`
	StartedBy      string            `json:"started_by"`
	StartedAt      string            `json:"started_at"`
	Participants   []CallParticipant `json:"participants"`
}

// CallParticipantChange is the data of call:participant_joined and
// call:participant_left; Participants lists who is in the call after it.
type CallParticipantChange struct {
	CallID       string            `json:"call_id"`
	UserID       string            `json:"user_id"`
	Reason       string            `json:"reason,omitempty"`
	Participants []CallParticipant `json:"participants"`
	// RecordingID is set on a join while a recording is requested or running.
	RecordingID string `json:"recording_id,omitempty"`
}

// CallEnded is the data of call:ended.
type CallEnded struct {
	CallID     string `json:"call_id"`
	Reason     string `json:"reason"`
	EndedBy    string `json:"ended_by,omitempty"`
	DurationMs int64  `json:"duration_ms"`
}

// CallError is the data of call:error.
type CallError struct {
	CallID  string `json:"call_id,omitempty"`
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// RecordingConsent is the data of call:recording:consent.
type RecordingConsent struct {
	CallID      string `json:"call_id"`
	RecordingID string `json:"recording_id"`
	Granted     *bool  `json:"granted"`
}

// RecordingStop is the data of call:recording:stop; an empty RecordingID
// means the call's current recording.
type RecordingStop struct {
	CallID      string `json:"call_id"`
	RecordingID string `json:"recording_id,omitempty"`
}

// RecordingQuality is the data of call:recording:quality.
type RecordingQuality struct {
	CallID      string   `json:"call_id"`
	RecordingID string   `json:"recording_id"`
	BitrateKbps *float64 `json:"bitrate_kbps"`
	PacketLoss  *float64 `json:"packet_loss"`
	JitterMs    *float64 `json:"jitter_ms"`
}

// ConsentRequested is the data of call:recording:consent_requested.
type ConsentRequested struct {
	CallID      string `json:"call_id"`
	RecordingID string `json:"recording_id"`
	RequestedBy string `json:"requested_by"`
	// TimeoutMs is how long the participant has to answer.
	TimeoutMs int64 `json:"timeout_ms"`
}

// RecordingStarted is the data of call:recording:started.
type RecordingStarted struct {
	CallID       string   `json:"call_id"`
	RecordingID  string   `json:"recording_id"`
	StartedAt    string   `json:"started_at"`
	Participants []string `json:"participants"`
}

// RecordingEnded is the data of call:recording:rejected and
// call:recording:stopped.
type RecordingEnded struct {
	CallID      string `json:"call_id"`
	RecordingID string `json:"recording_id"`
	Reason      string `json:"reason"`
	// UserID is who refused, timed out or stopped it, when one user did.
	UserID string `json:"user_id,omitempty"`
}

// Reasons of call:recording:rejected, call:recording:stopped,
// call:participant_left and call:ended.
const (
	ReasonConsentRefused = "consent_refused"
	ReasonConsentTimeout = "consent_timeout"
	ReasonStoppedByUser  = "stopped"
	ReasonCallEnded      = "call_ended"
	ReasonStorageFailed  = "storage_unavailable"
	ReasonLeft           = "left"
	ReasonDisconnected   = "disconnected"
	ReasonEndedByUser    = "ended"
	ReasonEmpty          = "empty"
)
