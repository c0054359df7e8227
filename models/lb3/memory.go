package lb3

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/latchkey/latchkey/models"
)

// memoryFile reads the juggler memory connector's file (juggler
// lib/connectors/memory.js saveToFile):
//
//	{"ids": {"Model": nextSeq, …}, "models": {"Model": {"<id>": "<record as a JSON string>", …}, …}}
//
// It streams: each pass decodes the file token by token and holds one
// record at a time, so a file of millions of tokens is never in memory.
type memoryFile struct {
	path string
}

func (m *memoryFile) describe() string { return m.path }
func (m *memoryFile) close() error     { return nil }

// table: every model may be in the file; one that is not simply has no
// records.
func (m *memoryFile) table(_ context.Context, model string) (string, bool, error) {
	return model, true, nil
}

func (m *memoryFile) scan(ctx context.Context, names []string, fn func(model string, rec models.Fields) error) error {
	f, err := os.Open(m.path)
	if err != nil {
		return err
	}
	defer f.Close()
	return scanMemory(ctx, bufio.NewReaderSize(f, 1<<20), names, fn)
}

// scanMemory reads a memory-connector file from r and calls fn with each
// record of the models in names, in file order. Anything that is not the
// juggler's format is an error naming where it was found.
func scanMemory(ctx context.Context, r io.Reader, names []string, fn func(model string, rec models.Fields) error) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if err := expectDelim(dec, '{', "the file"); err != nil {
		return err
	}
	sawModels := false
	for dec.More() {
		key, err := objectKey(dec, "the file")
		if err != nil {
			return err
		}
		if key != "models" {
			if err := skipValue(dec); err != nil {
				return fmt.Errorf("%q: %w", key, truncated(err))
			}
			continue
		}
		sawModels = true
		if err := expectDelim(dec, '{', `"models"`); err != nil {
			return err
		}
		for dec.More() {
			model, err := objectKey(dec, `"models"`)
			if err != nil {
				return err
			}
			if !slices.Contains(names, model) {
				if err := skipValue(dec); err != nil {
					return fmt.Errorf("models.%s: %w", model, truncated(err))
				}
				continue
			}
			if err := scanModel(ctx, dec, model, fn); err != nil {
				return err
			}
		}
		if err := expectDelim(dec, '}', `"models"`); err != nil {
			return err
		}
	}
	if err := expectDelim(dec, '}', "the file"); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("not a LoopBack memory file: more data after the top-level object")
	}
	if !sawModels {
		return errors.New(`not a LoopBack memory file: no "models" member (want {"ids":…,"models":…})`)
	}
	return nil
}

// scanModel reads {"<id>": "<record JSON>", …} of one model.
func scanModel(ctx context.Context, dec *json.Decoder, model string, fn func(string, models.Fields) error) error {
	where := "models." + model
	if err := expectDelim(dec, '{', where); err != nil {
		return err
	}
	for n := 0; dec.More(); n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		key, err := objectKey(dec, where)
		if err != nil {
			return err
		}
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%s[%q]: %w", where, key, truncated(err))
		}
		s, ok := tok.(string)
		if !ok {
			return fmt.Errorf("%s[%q]: want the record as a JSON string (the memory connector's format), got %v", where, key, tok)
		}
		rec, err := models.ParseObject([]byte(s))
		if err != nil {
			return fmt.Errorf("%s[%q]: the record is not a JSON object: %w", where, key, err)
		}
		if err := fn(model, rec); err != nil {
			return err
		}
	}
	return expectDelim(dec, '}', where)
}

func expectDelim(dec *json.Decoder, want json.Delim, where string) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("not a LoopBack memory file: %s: %w", where, truncated(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("not a LoopBack memory file: %s: want %q, got %v", where, want, tok)
	}
	return nil
}

func objectKey(dec *json.Decoder, where string) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", fmt.Errorf("not a LoopBack memory file: %s: %w", where, truncated(err))
	}
	key, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("not a LoopBack memory file: %s: want a member name, got %v", where, tok)
	}
	return key, nil
}

// skipValue reads past one value token by token, holding none of it.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// truncated words the decoder's end-of-input errors for an operator.
func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("the file ends early (truncated?)")
	}
	return err
}
