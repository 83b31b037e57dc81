package persistence

// Redis keys. Every key of a tenant's data starts with its tenant, so no
// lookup built from one tenant's token can reach another tenant's keys.

func tenantPrefix(tenant string) string { return "caasd:t:" + tenant + ":" }

// ConversationCacheKey caches a conversation's metadata and participants.
func ConversationCacheKey(tenant, conv string) string {
	return tenantPrefix(tenant) + "conv:" + conv
}

// SeqKey holds a room's last assigned sequence number.
func SeqKey(tenant, conv string) string { return tenantPrefix(tenant) + "seq:" + conv }

// StatusKey holds a message's status (pending, persisted, failed).
func StatusKey(tenant, messageID string) string { return tenantPrefix(tenant) + "msg:" + messageID }

// RoomSnapshotKey holds a room actor's snapshot.
func RoomSnapshotKey(tenant, conv string) string { return tenantPrefix(tenant) + "room:" + conv }

// RecentKey holds a room's most recent messages for catch-up.
func RecentKey(tenant, conv string) string { return tenantPrefix(tenant) + "recent:" + conv }

// SeqCompleteKey, when present, says that every conversation with stored
// messages has its seq counter in Redis, at least at the highest seq
// MongoDB holds: a missing counter is then a conversation never
// sequenced. It is set by a restore and goes with the rest of Redis's
// data, so a Redis that lost its data has none.
const SeqCompleteKey = "caasd:seq:complete"

// TouchesKey holds the last_message_at advances that stopping persisters
// could not make (conversation _id → Unix milliseconds), for the
// persisters still running or the next to start; each _id names its
// tenant, and only persisters read it.
const TouchesKey = "caasd:persister:touches"

// SeqRestoreKey is held by the node restoring the seq counters; it also
// tells the restore that Redis kept its data while it ran.
const SeqRestoreKey = "caasd:seq:restore"

// seqRestoreStagingKey holds a restore's highest stored seqs until the
// scan is over; token names the restore.
func seqRestoreStagingKey(token string) string { return SeqRestoreKey + ":floors:" + token }
