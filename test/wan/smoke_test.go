package wan

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	rate, _ := strconv.ParseFloat(os.Getenv("R"), 64)
	rtt, _ := strconv.ParseFloat(os.Getenv("T"), 64)
	n, _ := strconv.Atoi(os.Getenv("N"))
	l := upLink(t, Config{RateMbit: rate, RTTms: rtt})
	s := startSink(t, l)
	ss := startSenders(t, s.addr, n)
	_ = ss
	time.Sleep(3 * time.Second)
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(0, &ru0)
	c0, _ := l.Counters()
	b0 := s.bytes.Load()
	time.Sleep(5 * time.Second)
	b1 := s.bytes.Load()
	c1, _ := l.Counters()
	syscall.Getrusage(0, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	t.Logf("goodput %.1f Mbit wire %.1f, proc cpu %.0f%%", mbit(b1-b0, 5*time.Second), mbit(int64(c1.Up.Bytes-c0.Up.Bytes), 5*time.Second), 100*cpu.Seconds()/5)
	t.Logf("up %+v", c1.Up)
	t.Logf("down %+v", c1.Down)
	for _, c := range ss.conns {
		i, _ := tcpInfo(c)
		fmt.Printf("cwnd %d rtt %dus retrans %d\n", i.Snd_cwnd, i.Rtt, i.Total_retrans)
	}
}
