package zseek

import (
	"runtime"
	"sync"
	"testing"
)

// TestEncoderMemory keeps EncoderMemory honest: the heap an Encoder holds
// after two concurrent frames at a level stays within what it says (the
// staging memory budget reserves it).
func TestEncoderMemory(t *testing.T) {
	src := make([]byte, 2<<20)
	for i := range src {
		src[i] = byte(i * 7 % 251)
	}
	for _, lvl := range Levels() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		e := NewParallelEncoder(2)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { e.EncodeFrame(nil, src, lvl) })
		}
		wg.Wait()
		runtime.GC()
		runtime.ReadMemStats(&after)
		held := int64(after.HeapInuse) - int64(before.HeapInuse)
		t.Logf("%v: %.1f MiB held, EncoderMemory %.1f MiB", lvl, float64(held)/(1<<20), float64(EncoderMemory(lvl, 2))/(1<<20))
		if held > EncoderMemory(lvl, 2)+(1<<20) {
			t.Errorf("%v: the encoder holds %d bytes, EncoderMemory says %d", lvl, held, EncoderMemory(lvl, 2))
		}
		runtime.KeepAlive(e)
	}
}
