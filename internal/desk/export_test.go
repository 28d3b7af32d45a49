package desk

// KeyedReplyID is the Message-ID of a keyed reply (tests that take it first).
var KeyedReplyID = keyedReplyID
