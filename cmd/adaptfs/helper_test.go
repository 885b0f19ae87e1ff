package main

import (
	"slices"
	"strings"
	"testing"
)

func TestMountHelperArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    []string // adaptfs mount arguments
		wantErr string
	}{
		{
			name: "fstab line as mount(8) passes it",
			args: []string{"b/p", "/mnt/d", "-o", "rw,allow_other,config=/etc/a.toml,endpoint=http://h:9000,_netdev,nofail"},
			want: []string{"--config", "/etc/a.toml", "-o", "allow_other,endpoint=http://h:9000", "b/p", "/mnt/d"},
		},
		{
			name: "flags, joined -o, systemd options",
			args: []string{"-nv", "-oro,x-systemd.automount,noauto,defaults,uid=1000", "b", "/m"},
			want: []string{"-o", "ro,uid=1000", "--log-level", "debug", "b", "/m"},
		},
		{name: "unknown option", args: []string{"b", "/m", "-o", "_netdev,colour=red"}, wantErr: `unknown option "colour"`},
		{name: "sloppy drops it", args: []string{"-s", "b", "/m", "-o", "colour=red,ro"}, want: []string{"-o", "ro", "b", "/m"}},
		{name: "credentials", args: []string{"b", "/m", "-o", "secret_access_key=x"}, wantErr: "secret_access_key"},
		{name: "unknown flag", args: []string{"-x", "b", "/m"}, wantErr: "unknown flag -x"},
		{name: "one operand", args: []string{"b"}, wantErr: "want BUCKET[/PREFIX] MOUNTPOINT"},
		{name: "-o without options", args: []string{"b", "/m", "-o"}, wantErr: "-o needs OPTIONS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := parseHelperArgs(tt.args)
			var got []string
			if err == nil {
				got, err = h.mountCommandArgs()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}
