package lb3

import (
	"bufio"
	"context"
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
// It streams: a pass reads the file byte by byte and holds one record at a
// time, so a file of millions of tokens is never in memory. The first pass
// reads (and checks) the whole file and notes where each model's records
// start; a later pass of the same, unchanged file seeks to the models it
// wants and reads only those.
type memoryFile struct {
	path  string
	index map[string]int64 // key in "models" → offset of its '{', after a whole pass
	stamp [2]int64         // size and modification time the index is of
	app   *App             // the LoopBack app's names (Options.App), or nil
}

func (m *memoryFile) describe() string { return m.path }
func (m *memoryFile) close() error     { return nil }

// table: every model may be in the file; one that is not simply has no
// records. A model's records are under its name, or the app's
// memory.collection (juggler memory.js getCollection).
func (m *memoryFile) table(_ context.Context, model string) (string, bool, error) {
	if c, ok := m.app.Table("memory", model); ok {
		return c, true, nil
	}
	return model, true, nil
}

// scan reads the models in names, each under its collection.
func (m *memoryFile) scan(ctx context.Context, names []string, fn func(model string, rec models.Fields) error) error {
	keys := make([]string, 0, len(names))
	modelOf := map[string]string{} // collection → the first model asked for under it
	for _, n := range names {
		key, _, _ := m.table(ctx, n)
		if _, seen := modelOf[key]; !seen {
			modelOf[key] = n
			keys = append(keys, key)
		}
	}
	return m.scanKeys(ctx, keys, func(key string, rec models.Fields) error { return fn(modelOf[key], rec) })
}

// scanKeys calls fn with each record under the keys of "models" in names.
func (m *memoryFile) scanKeys(ctx context.Context, names []string, fn func(key string, rec models.Fields) error) error {
	f, err := os.Open(m.path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	stamp := [2]int64{fi.Size(), fi.ModTime().UnixNano()}
	if m.index == nil || m.stamp != stamp {
		m.index = nil
		index := map[string]int64{}
		if err := scanMemoryIndex(ctx, bufio.NewReaderSize(f, 1<<20), names, fn, index); err != nil {
			return err
		}
		m.index, m.stamp = index, stamp
		return nil
	}
	// Only the models asked for, in file order.
	var want []string
	for _, n := range names {
		if _, ok := m.index[n]; ok && !slices.Contains(want, n) {
			want = append(want, n)
		}
	}
	slices.SortFunc(want, func(a, b string) int { return int(m.index[a] - m.index[b]) })
	r := bufio.NewReaderSize(f, 1<<20)
	for _, model := range want {
		if _, err := f.Seek(m.index[model], io.SeekStart); err != nil {
			return err
		}
		r.Reset(f)
		if err := scanModel(ctx, &lexer{r: r}, model, fn); err != nil {
			return err
		}
	}
	return nil
}

// scanMemory reads a memory-connector file from r and calls fn with each
// record of the models in names, in file order. Anything that is not the
// juggler's format is an error naming where it was found.
func scanMemory(ctx context.Context, r io.Reader, names []string, fn func(model string, rec models.Fields) error) error {
	return scanMemoryIndex(ctx, bufio.NewReaderSize(r, 1<<16), names, fn, map[string]int64{})
}

// scanMemoryIndex is scanMemory noting in index where each model's
// object starts.
func scanMemoryIndex(ctx context.Context, r *bufio.Reader, names []string, fn func(model string, rec models.Fields) error, index map[string]int64) error {
	l := &lexer{r: r}
	if err := l.delim('{', "the file"); err != nil {
		return err
	}
	sawModels := false
	for first := true; ; first = false {
		more, err := l.more(first, "the file")
		if err != nil {
			return err
		}
		if !more {
			break
		}
		key, err := l.key("the file")
		if err != nil {
			return err
		}
		if key != "models" {
			if err := l.skip(); err != nil {
				return fmt.Errorf("%q: %w", key, truncated(err))
			}
			continue
		}
		sawModels = true
		if err := l.delim('{', `"models"`); err != nil {
			return err
		}
		for first := true; ; first = false {
			more, err := l.more(first, `"models"`)
			if err != nil {
				return err
			}
			if !more {
				break
			}
			model, err := l.key(`"models"`)
			if err != nil {
				return err
			}
			if _, err := l.peek(); err == nil {
				index[model] = l.off
			}
			if !slices.Contains(names, model) {
				if err := l.skip(); err != nil {
					return fmt.Errorf("models.%s: %w", model, truncated(err))
				}
				continue
			}
			if err := scanModel(ctx, l, model, fn); err != nil {
				return err
			}
		}
		if err := l.delim('}', `"models"`); err != nil {
			return err
		}
	}
	if err := l.delim('}', "the file"); err != nil {
		return err
	}
	if _, err := l.peek(); err != io.EOF {
		return errors.New("not a LoopBack memory file: more data after the top-level object")
	}
	if !sawModels {
		return errors.New(`not a LoopBack memory file: no "models" member (want {"ids":…,"models":…})`)
	}
	return nil
}

// scanModel reads {"<id>": "<record JSON>", …} of one model.
func scanModel(ctx context.Context, l *lexer, model string, fn func(string, models.Fields) error) error {
	where := "models." + model
	if err := l.delim('{', where); err != nil {
		return err
	}
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		more, err := l.more(n == 0, where)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		key, err := l.key(where)
		if err != nil {
			return err
		}
		c, err := l.peek()
		if err != nil {
			return fmt.Errorf("%s[%q]: %w", where, key, truncated(err))
		}
		if c != '"' {
			return fmt.Errorf("%s[%q]: want the record as a JSON string (the memory connector's format), got %q", where, key, c)
		}
		s, err := l.str()
		if err != nil {
			return fmt.Errorf("%s[%q]: %w", where, key, truncated(err))
		}
		rec, err := parseRecord(s)
		if err != nil {
			return fmt.Errorf("%s[%q]: the record is not a JSON object: %w", where, key, err)
		}
		if err := fn(model, rec); err != nil {
			return err
		}
	}
	return l.delim('}', where)
}

// truncated words the decoder's end-of-input errors for an operator.
func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("the file ends early (truncated?)")
	}
	return err
}
