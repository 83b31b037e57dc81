package persistence

import (
	"encoding/json"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/caasd/caasd/internal/jsonbson"
	"github.com/caasd/caasd/internal/wire"
)

// messageDoc is a stored message as the BSON encoder writes it; messageDocument
// writes the same fields, in this order, without it.
type messageDoc struct {
	ID             string    `bson:"_id"`
	MessageID      string    `bson:"message_id"`
	ConversationID string    `bson:"conversation_id"`
	TenantID       string    `bson:"tenant_id"`
	SenderID       string    `bson:"sender_id"`
	Content        any       `bson:"content"`
	Seq            int64     `bson:"seq"`
	CreatedAt      time.Time `bson:"created_at"`
	PersistedAt    time.Time `bson:"persisted_at"`
}

// messageDocument encodes the stored document of msg. Its content, JSON,
// is stored as the value it holds (an object as a document, and so on),
// or as a string when it is not JSON a document can hold. The usual
// content is turned into BSON in one pass; the rest goes through
// encoding/json and the BSON encoder (messageDocSlow), whose result the
// pass gives.
func messageDocument(msg *wire.MessageNew, created, persisted time.Time) (bson.Raw, error) {
	id := docID(msg.TenantID, msg.MessageID)
	doc := make([]byte, 0, 160+len(id)+len(msg.MessageID)+len(msg.ConversationID)+len(msg.TenantID)+len(msg.SenderID)+2*len(msg.Content))
	idx, doc := bsoncore.AppendDocumentStart(doc)
	doc = bsoncore.AppendStringElement(doc, "_id", id)
	doc = bsoncore.AppendStringElement(doc, "message_id", msg.MessageID)
	doc = bsoncore.AppendStringElement(doc, "conversation_id", msg.ConversationID)
	doc = bsoncore.AppendStringElement(doc, "tenant_id", msg.TenantID)
	doc = bsoncore.AppendStringElement(doc, "sender_id", msg.SenderID)
	doc, ok := jsonbson.AppendElement(doc, "content", msg.Content)
	if !ok {
		return messageDocSlow(msg, created, persisted)
	}
	doc = bsoncore.AppendInt64Element(doc, "seq", msg.Seq)
	doc = bsoncore.AppendDateTimeElement(doc, "created_at", int64(bson.NewDateTimeFromTime(created)))
	doc = bsoncore.AppendDateTimeElement(doc, "persisted_at", int64(bson.NewDateTimeFromTime(persisted)))
	doc, err := bsoncore.AppendDocumentEnd(doc, idx)
	return bson.Raw(doc), err
}

// messageDocSlow is messageDocument through encoding/json and the BSON
// encoder.
func messageDocSlow(msg *wire.MessageNew, created, persisted time.Time) (bson.Raw, error) {
	var content any
	if err := json.Unmarshal(msg.Content, &content); err != nil {
		content = string(msg.Content)
	}
	return bson.Marshal(messageDoc{
		ID: docID(msg.TenantID, msg.MessageID), MessageID: msg.MessageID, ConversationID: msg.ConversationID,
		TenantID: msg.TenantID, SenderID: msg.SenderID, Content: content, Seq: msg.Seq,
		CreatedAt: created, PersistedAt: persisted,
	})
}
