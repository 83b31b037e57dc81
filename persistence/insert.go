package persistence

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// insertCommandBytes bounds the documents of one insert command. A command
// is one BSON document, which a server takes up to 16 MiB; half leaves
// room for the command's own fields and the array's keys.
const insertCommandBytes = 8 << 20

// insertCommand builds {insert: coll, documents: docs, ordered: false}
// around the documents' bytes, copied once; size is their total length.
func insertCommand(coll string, docs []bson.Raw, size int) bson.Raw {
	cmd := make([]byte, 0, size+len(docs)*8+len(coll)+64)
	doc, cmd := bsoncore.ReserveLength(cmd)
	cmd = bsoncore.AppendStringElement(cmd, "insert", coll)
	arr, cmd := bsoncore.AppendArrayElementStart(cmd, "documents")
	var key [20]byte
	for i, d := range docs {
		cmd = bsoncore.AppendDocumentElement(cmd, string(strconv.AppendInt(key[:0], int64(i), 10)), d)
	}
	cmd, _ = bsoncore.AppendArrayEnd(cmd, arr)
	cmd = bsoncore.AppendBooleanElement(cmd, "ordered", false)
	cmd, _ = bsoncore.AppendDocumentEnd(cmd, doc)
	return cmd
}

// duplicateKey tells whether a write error's code is a unique index's
// refusal (11000, or 11001 from older servers).
func duplicateKey(code int) bool { return code == 11000 || code == 11001 }

// insertWriteError is one document's failure in an insert's reply.
type insertWriteError struct {
	Index   int // into the documents given to insertDocs
	Code    int
	Message string
}

// insertDocs inserts docs into coll unordered, with insert commands of at
// most maxBytes of documents each (one command for a usual batch), and
// returns the documents that failed on their own, such as duplicates; an
// error means the outcome of some documents is unknown, and the caller
// inserts them all again.
//
// Every document carries its _id. The driver's InsertMany decodes each
// document's _id through a new decoder with a 4 KiB read buffer: about
// 22 µs of CPU and 6.8 KB of garbage a document (batches of 200, 450-byte
// messages, store in another process), against 3.5–5 µs and 1.1 KB with
// the command built here. At 1,000 messages a second those buffers were
// 14 % of all caasd allocated, and a batch's inserts ran for milliseconds
// on end while the deliveries waited for the node's one P.
func insertDocs(ctx context.Context, coll *mongo.Collection, docs []bson.Raw, maxBytes int) ([]insertWriteError, error) {
	var failed []insertWriteError
	for from := 0; from < len(docs); {
		to, size := from, 0
		for to < len(docs) && (to == from || size+len(docs[to]) <= maxBytes) {
			size += len(docs[to])
			to++
		}
		err := coll.Database().RunCommand(ctx, insertCommand(coll.Name(), docs[from:to], size)).Err()
		var we mongo.WriteException
		if err != nil && (!errors.As(err, &we) || we.WriteConcernError != nil) {
			return nil, fmt.Errorf("insert into %s: %w", coll.Name(), err)
		}
		for _, e := range we.WriteErrors {
			if e.Index < 0 || from+e.Index >= to {
				return nil, fmt.Errorf("insert into %s: write error for document %d of %d: %w", coll.Name(), e.Index, to-from, err)
			}
			failed = append(failed, insertWriteError{Index: from + e.Index, Code: e.Code, Message: e.Message})
		}
		from = to
	}
	return failed, nil
}
