package lb3

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// lexer is a small streaming reader of the memory file's JSON: the file
// is objects of strings, so scanning it byte by byte with a bufio.Reader
// costs a fraction of encoding/json's Decoder.Token, and skipping a model
// allocates nothing.
type lexer struct {
	r   *bufio.Reader
	off int64 // bytes consumed
	buf []byte
	dec []byte // a string's decoded value, when it has escapes
}

var errEOF = io.ErrUnexpectedEOF

func (l *lexer) next() (byte, error) {
	c, err := l.r.ReadByte()
	if err != nil {
		return 0, errEOF
	}
	l.off++
	return c, nil
}

// peek returns the next byte that is not white space, without taking it.
func (l *lexer) peek() (byte, error) {
	for {
		c, err := l.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				return 0, io.EOF
			}
			return 0, err
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			l.off++
			continue
		}
		l.r.UnreadByte()
		return c, nil
	}
}

// delim takes want (after white space).
func (l *lexer) delim(want byte, where string) error {
	c, err := l.peek()
	if err != nil {
		return fmt.Errorf("not a LoopBack memory file: %s: %w", where, truncated(err))
	}
	if c != want {
		return fmt.Errorf("not a LoopBack memory file: %s: want %q, got %q", where, want, c)
	}
	l.next()
	return nil
}

// more takes a ',' between members and reports whether another member
// follows; at the closing '}' it leaves it for delim.
func (l *lexer) more(first bool, where string) (bool, error) {
	c, err := l.peek()
	if err != nil {
		return false, fmt.Errorf("not a LoopBack memory file: %s: %w", where, truncated(err))
	}
	switch {
	case c == '}':
		return false, nil
	case first:
		return true, nil
	case c == ',':
		l.next()
		return true, nil
	}
	return false, fmt.Errorf("not a LoopBack memory file: %s: want ',' or '}', got %q", where, c)
}

// key reads a member name and its ':'.
func (l *lexer) key(where string) (string, error) {
	c, err := l.peek()
	if err != nil {
		return "", fmt.Errorf("not a LoopBack memory file: %s: %w", where, truncated(err))
	}
	if c != '"' {
		return "", fmt.Errorf("not a LoopBack memory file: %s: want a member name, got %q", where, c)
	}
	b, err := l.str()
	if err != nil {
		return "", fmt.Errorf("not a LoopBack memory file: %s: %w", where, truncated(err))
	}
	k := string(b)
	if err := l.delim(':', where); err != nil {
		return "", err
	}
	return k, nil
}

// str reads a JSON string at the reader (its '"' next, white space taken)
// and returns its value, decoded, in a buffer valid until the next call.
func (l *lexer) str() ([]byte, error) {
	if c, err := l.next(); err != nil {
		return nil, err
	} else if c != '"' {
		return nil, fmt.Errorf("want a string, got %q", c)
	}
	l.buf = l.buf[:0]
	for {
		chunk, err := l.r.ReadSlice('"')
		l.off += int64(len(chunk))
		if err == bufio.ErrBufferFull {
			l.buf = append(l.buf, chunk...)
			continue
		}
		if err != nil {
			return nil, errEOF
		}
		l.buf = append(l.buf, chunk...)
		// The quote ends the string unless an odd run of backslashes
		// escapes it.
		n := 0
		for i := len(l.buf) - 2; i >= 0 && l.buf[i] == '\\'; i-- {
			n++
		}
		if n%2 == 0 {
			break
		}
	}
	raw := l.buf[:len(l.buf)-1]
	if bytes.IndexByte(raw, '\\') < 0 && decodesToItself(raw) {
		return raw, nil
	}
	var err error
	l.dec, err = appendUnquoted(l.dec[:0], raw)
	if err != nil {
		return nil, err
	}
	return l.dec, nil
}

// decodesToItself: b (a JSON string body without escapes) holds no control character and is valid UTF-8, so it
// decodes to itself.
func decodesToItself(b []byte) bool {
	ascii := true
	for _, c := range b {
		if c < 0x20 {
			return false
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	return ascii || utf8.Valid(b)
}

// appendUnquoted appends the decoded body of a JSON string to out, as
// encoding/json would decode it (invalid UTF-8 becomes U+FFFD); a control
// character or a bad escape is an error. LoopBack's records are JSON
// inside a JSON string, so nearly every escape is \": the runs between
// escapes are copied whole when they decode to themselves.
func appendUnquoted(out, raw []byte) ([]byte, error) {
	for i := 0; i < len(raw); {
		end := len(raw)
		if j := bytes.IndexByte(raw[i:], '\\'); j >= 0 {
			end = i + j
		}
		if run := raw[i:end]; decodesToItself(run) {
			out = append(out, run...)
		} else {
			for k := 0; k < len(run); {
				switch c := run[k]; {
				case c < 0x20:
					return nil, errors.New("a control character in a string")
				case c < utf8.RuneSelf:
					out = append(out, c)
					k++
				default:
					r, size := utf8.DecodeRune(run[k:])
					out = utf8.AppendRune(out, r)
					k += size
				}
			}
		}
		i = end
		if i == len(raw) {
			break
		}
		// An escape at i.
		if i+1 >= len(raw) {
			return nil, errors.New("a bad escape in a string")
		}
		switch e := raw[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(raw[i+2:])
			if !ok {
				return nil, errors.New("a bad \\u escape in a string")
			}
			i += 6
			if utf16Surrogate(r) {
				if r2, ok := hex4(raw[min(i+2, len(raw)):]); ok && i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if dec := utf16Decode(r, r2); dec != utf8.RuneError {
						out = utf8.AppendRune(out, dec)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return nil, errors.New("a bad escape in a string")
		}
		i += 2
	}
	return out, nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[:4]), 16, 32)
	return rune(n), err == nil
}

func utf16Surrogate(r rune) bool { return 0xd800 <= r && r < 0xe000 }

func utf16Decode(r1, r2 rune) rune {
	if 0xd800 <= r1 && r1 < 0xdc00 && 0xdc00 <= r2 && r2 < 0xe000 {
		return (r1-0xd800)<<10 | (r2 - 0xdc00) + 0x10000
	}
	return utf8.RuneError
}

// skip reads past one JSON value, holding none of it. It checks the
// nesting and the strings, not every literal: a record is checked when it
// is read, and a model the import does not read needs only be passed.
func (l *lexer) skip() error {
	depth := 0
	for {
		c, err := l.peek()
		if err != nil {
			return errEOF
		}
		switch c {
		case '"':
			if _, err := l.str(); err != nil {
				return err
			}
		case '{', '[':
			l.next()
			depth++
			continue
		case '}', ']':
			if depth == 0 {
				return fmt.Errorf("unexpected %q", c)
			}
			l.next()
			depth--
		case ',', ':':
			if depth == 0 {
				return fmt.Errorf("unexpected %q", c)
			}
			l.next()
			continue
		default: // a number or a literal
			for {
				c, err := l.r.ReadByte()
				if err != nil {
					return errEOF
				}
				if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == ':' {
					l.r.UnreadByte()
					break
				}
				l.off++
			}
		}
		if depth == 0 {
			return nil
		}
	}
}
