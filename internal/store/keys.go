package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// MaxIndexedIDBytes is the longest Message-ID indexed as written: a whole
// RFC 5322 line (section 2.1.1). A longer one is indexed by its SHA-256, so
// no email can make an index row longer than PostgreSQL's btree allows
// (about 2,700 bytes).
const MaxIndexedIDBytes = 998

// maxDedupeKeyBytes bounds what InsertMessage accepts: the longest key the
// functions below build.
const maxDedupeKeyBytes = len("recovered:mid:") + MaxIndexedIDBytes

// MessageIDKey is how a Message-ID (without angle brackets) is indexed and
// looked up (messages.message_id_key): the id itself, cleaned as every
// stored text is, when it is at most MaxIndexedIDBytes, else "sha256 "
// and the hex SHA-256 of the cleaned id. Parsed ids never hold a space, so
// a hashed key never equals a real id. "" stays "".
func MessageIDKey(id string) string {
	id = CleanText(strings.TrimSpace(id))
	if len(id) <= MaxIndexedIDBytes {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "sha256 " + hex.EncodeToString(sum[:])
}

// DedupeKey is the key a mailbox's messages are unique by
// (messages.dedupe_key): "mid:" and the MessageIDKey when the message has
// a Message-ID, else "sha256:" and the hex SHA-256 of its raw source. It is
// the only place such a key is built.
func DedupeKey(messageID, rawSHA256 string) string {
	if key := MessageIDKey(messageID); key != "" {
		return "mid:" + key
	}
	return "sha256:" + rawSHA256
}

// ClashDedupeKey is the key of a message that reuses the Message-ID of a
// different stored email: its content, so it is stored once too (as
// DedupeKey's "sha256:" key, in a namespace of its own).
func ClashDedupeKey(rawSHA256 string) string {
	return clashPrefix + rawSHA256
}

const clashPrefix = "mid+sha256:"

// threadKey is how a message's Message-ID is indexed for threading
// (messages.message_id_key): MessageIDKey, but nothing for a message that
// reuses another email's Message-ID (ClashDedupeKey), or a follow-up
// naming that id would join whichever came last.
func threadKey(m *Message) string {
	if strings.HasPrefix(m.DedupeKey, clashPrefix) {
		return ""
	}
	return MessageIDKey(m.MessageID)
}

// SiblingDedupeKey is the key of the k-th original (k >= 1) attached
// beside the first in one forward: its own DedupeKey when it has a
// Message-ID, else derived from the forward's key and k.
func SiblingDedupeKey(originalMessageID, forwardKey string, k int) string {
	if key := MessageIDKey(originalMessageID); key != "" {
		return "mid:" + key
	}
	sum := sha256.Sum256([]byte(forwardKey))
	return fmt.Sprintf("recovered#%d:%s", k, hex.EncodeToString(sum[:]))
}

// RecoveredDedupeKey is the key of a customer's original recovered from a
// forward: its own DedupeKey when it has a Message-ID (so the original
// arriving directly later is a duplicate), else derived from the
// forward's key.
func RecoveredDedupeKey(originalMessageID, forwardKey string) string {
	if key := MessageIDKey(originalMessageID); key != "" {
		return "mid:" + key
	}
	return "recovered:" + forwardKey
}
