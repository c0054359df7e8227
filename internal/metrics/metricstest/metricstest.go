// Package metricstest scrapes a Prometheus endpoint in tests and reads the
// samples, parsed with expfmt as Prometheus itself would.
package metricstest

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape is one parsed scrape: metric families by name.
type Scrape map[string]*dto.MetricFamily

// Get scrapes url (GET, the text format) and parses the answer; a status
// other than 200 is an error.
func Get(url string) (Scrape, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return Parse(resp.Body)
}

// Parse reads the Prometheus text format.
func Parse(r io.Reader) (Scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	return Scrape(fams), err
}

// Series are the samples of the family name whose labels include every
// "label=value" of match, each with its labels as "k=v,k=v" (sorted).
func (s Scrape) Series(name string, match ...string) map[string]*dto.Metric {
	out := map[string]*dto.Metric{}
	f := s[name]
	if f == nil {
		return out
	}
next:
	for _, m := range f.GetMetric() {
		var labels []string
		for _, l := range m.GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		for _, want := range match {
			found := false
			for _, l := range labels {
				found = found || l == want
			}
			if !found {
				continue next
			}
		}
		sort.Strings(labels)
		out[strings.Join(labels, ",")] = m
	}
	return out
}

// Value is the value of the one series of name matching match: a counter's
// or gauge's value, a histogram's sample count. ok is false when there is
// no such series, or more than one.
func (s Scrape) Value(name string, match ...string) (v float64, ok bool) {
	series := s.Series(name, match...)
	if len(series) != 1 {
		return 0, false
	}
	for _, m := range series {
		v = value(m)
	}
	return v, true
}

// Sum is the sum of the values of every series of name matching match
// (0 when there is none).
func (s Scrape) Sum(name string, match ...string) float64 {
	var sum float64
	for _, m := range s.Series(name, match...) {
		sum += value(m)
	}
	return sum
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}
