package wire

// History and read marker events.
const (
	EvHistoryGet  = "history:get"
	EvHistoryPage = "history:page"
	EvMessageRead = "message:read"
	EvRoomRead    = "room:read"
)

// MaxHistoryLimit bounds one history page.
const MaxHistoryLimit = 100

// HistoryGet is the data of history:get: before_seq or after_seq.
type HistoryGet struct {
	ConversationID string `json:"conversation_id"`
	BeforeSeq      int64  `json:"before_seq,omitempty"`
	AfterSeq       *int64 `json:"after_seq,omitempty"`
	Limit          int    `json:"limit,omitempty"`
}

// HistoryPage is the data of history:page.
type HistoryPage struct {
	ConversationID string       `json:"conversation_id"`
	Messages       []MessageNew `json:"messages"`
	HasMore        bool         `json:"has_more"`
}

// MessageRead is the data of message:read and room:read.
type MessageRead struct {
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id,omitempty"`
	Seq            int64  `json:"seq"`
}
