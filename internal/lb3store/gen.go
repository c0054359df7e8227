package lb3store

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"time"
)

// WriteMemoryFile writes a LoopBack memory-connector file (juggler's
// saveToFile layout: {"ids":…,"models":{"User":{"<id>":"<record JSON>"}}},
// two-space indented like JSON.stringify(…, null, '  ')) holding users
// built-in User records (ids 1…users, distinct lower-case emails, bcrypt-shaped
// hashes, every fourth with a pending verificationToken) and tokens
// AccessToken records spread over the users, every second one expired at
// now (created + ttl in the past) and the rest live. It is the load for the
// import benchmarks: nothing in it needs LoopBack to be made, and it streams,
// so files of millions of records cost no memory.
func WriteMemoryFile(w io.Writer, users, tokens int, now time.Time) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	fmt.Fprintf(bw, "{\n  \"ids\": {\n    \"User\": %d,\n    \"AccessToken\": 1\n  },\n  \"models\": {\n    \"User\": {", users+1)
	const hash = "$2a$10$abcdefghijklmnopqrstuu5Jd5hbmH9qBMNuWL3fAvbiqUbD0hXcK"
	var rec []byte
	for i := 1; i <= users; i++ {
		rec = rec[:0]
		rec = append(rec, `{"email":"user`...)
		rec = strconv.AppendInt(rec, int64(i), 10)
		rec = append(rec, `@example.com","username":"user`...)
		rec = strconv.AppendInt(rec, int64(i), 10)
		rec = append(rec, `","password":"`+hash+`","emailVerified":`...)
		rec = strconv.AppendBool(rec, i%2 == 0)
		if i%4 == 1 {
			rec = append(rec, `,"verificationToken":"`...)
			rec = append(rec, tokenID(-i)[:32]...)
			rec = append(rec, '"')
		}
		rec = append(rec, `,"id":`...)
		rec = strconv.AppendInt(rec, int64(i), 10)
		rec = append(rec, '}')
		writeEntry(bw, i > 1, strconv.Itoa(i), rec)
	}
	bw.WriteString("\n    },\n    \"AccessToken\": {")
	live := now.Add(-time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")
	dead := now.Add(-30 * 24 * time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")
	for i := 0; i < tokens; i++ {
		id := tokenID(i)
		created := live
		if i%2 == 1 {
			created = dead
		}
		rec = rec[:0]
		rec = append(rec, `{"id":"`...)
		rec = append(rec, id...)
		rec = append(rec, `","ttl":1209600,"created":"`...)
		rec = append(rec, created...)
		rec = append(rec, `","userId":`...)
		rec = strconv.AppendInt(rec, int64(i%max(users, 1)+1), 10)
		rec = append(rec, '}')
		writeEntry(bw, i > 0, id, rec)
	}
	bw.WriteString("\n    }\n  }\n}")
	return bw.Flush()
}

// writeEntry writes "key": "<rec as a JSON string>"; rec holds no
// character but '"' that JSON escapes.
func writeEntry(bw *bufio.Writer, comma bool, key string, rec []byte) {
	if comma {
		bw.WriteByte(',')
	}
	bw.WriteString("\n      \"")
	bw.WriteString(key)
	bw.WriteString("\": \"")
	for _, c := range rec {
		if c == '"' {
			bw.WriteByte('\\')
		}
		bw.WriteByte(c)
	}
	bw.WriteByte('"')
}

// tokenID is a deterministic 64-character token id (hex letters and digits).
func tokenID(i int) string {
	s := sha256.Sum256(strconv.AppendInt(nil, int64(i), 10))
	return hex.EncodeToString(s[:])
}
