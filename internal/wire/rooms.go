package wire

// Room moderation, presence and typing events.
const (
	EvRoomKick   = "room:kick"
	EvRoomBan    = "room:ban"
	EvRoomUnban  = "room:unban"
	EvRoomMute   = "room:mute"
	EvRoomUnmute = "room:unmute"
	EvTyping     = "typing"

	EvRoomModerated      = "room:moderated"
	EvRoomMemberKicked   = "room:member_kicked"
	EvRoomMemberBanned   = "room:member_banned"
	EvRoomMemberUnbanned = "room:member_unbanned"
	EvRoomMemberMuted    = "room:member_muted"
	EvRoomMemberUnmuted  = "room:member_unmuted"
	EvRoomMemberJoined   = "room:member_joined"
	EvRoomMemberLeft     = "room:member_left"
	EvRoomTyping         = "room:typing"
)

// Moderation actions.
const (
	ActionKick   = "kick"
	ActionBan    = "ban"
	ActionUnban  = "unban"
	ActionMute   = "mute"
	ActionUnmute = "unmute"
)

// Moderate is the data of room:kick, room:ban, room:unban, room:mute and
// room:unmute, and the body of the admin moderation API (with Action).
type Moderate struct {
	Action         string `json:"action,omitempty"`
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
	DurationS      int64  `json:"duration_s,omitempty"`
	Reason         string `json:"reason,omitempty"`
}

// Moderated is the data of room:moderated and of the room's member events.
type Moderated struct {
	Action         string `json:"action"`
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
	By             string `json:"by,omitempty"`
	DurationS      int64  `json:"duration_s,omitempty"`
	Until          string `json:"until,omitempty"`
	Reason         string `json:"reason,omitempty"`
}

// Presence is the data of room:member_joined and room:member_left.
type Presence struct {
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
}

// Typing is the data of typing and room:typing.
type Typing struct {
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id,omitempty"`
}

// MaxReasonLen bounds a moderation reason.
const MaxReasonLen = 500

// MaxModerationDurationS bounds a temporary ban or mute (one year).
const MaxModerationDurationS = 365 * 24 * 3600
