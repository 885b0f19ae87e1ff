package scenario

import (
	"testing"
	"time"
)

func TestReactions(t *testing.T) {
	sched := []Link{{At: 0}, {At: 20 * time.Second}, {At: 40 * time.Second}}
	samples := func(conc map[float64]int) []Sample {
		var out []Sample
		c := 8
		for s := 1.0; s <= 60; s++ {
			if v, ok := conc[s]; ok {
				c = v
			}
			out = append(out, Sample{T: s, PartSizeMiB: 16, Concurrency: c})
		}
		return out
	}
	tests := []struct {
		name          string
		runs          []RunResult
		first, settle [2]float64 // median of step 1, step 2
		unchanged     [2]int
	}{
		{
			name:  "changes after each step",
			runs:  []RunResult{{Seconds: 60, Samples: samples(map[float64]int{25: 4, 31: 3, 44: 6})}},
			first: [2]float64{5, 4}, settle: [2]float64{11, 4},
		},
		{
			name:      "no change after the second step",
			runs:      []RunResult{{Seconds: 60, Samples: samples(map[float64]int{22: 4})}},
			first:     [2]float64{2, 0},
			settle:    [2]float64{2, 0},
			unchanged: [2]int{0, 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := reactions(sched, tt.runs)
			if len(got) != 2 {
				t.Fatalf("%d reactions, want 2", len(got))
			}
			for i, r := range got {
				if r.FirstChangeSeconds.Median != tt.first[i] || r.SettledSeconds.Median != tt.settle[i] || r.Unchanged != tt.unchanged[i] {
					t.Errorf("step %d: first %v settled %v unchanged %d, want %v %v %d",
						i+1, r.FirstChangeSeconds.Median, r.SettledSeconds.Median, r.Unchanged, tt.first[i], tt.settle[i], tt.unchanged[i])
				}
			}
		})
	}
}
