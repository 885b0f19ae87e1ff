package s3backend

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// List calls fn for each entry under prefix, in key order, following
// pagination. The marker object of the listed directory itself ("dir/" when
// listing "dir/") is skipped. An error from fn stops the listing and is
// returned as is.
func (c *Client) List(ctx context.Context, prefix string, recursive bool, fn func(Entry) error) error {
	full := c.fullKey(prefix)
	in := &s3.ListObjectsV2Input{Bucket: &c.bucket}
	if full != "" {
		in.Prefix = aws.String(full)
	}
	if !recursive {
		in.Delimiter = aws.String("/")
	}
	p := s3.NewListObjectsV2Paginator(c.s3, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return c.wrapErr(ctx, "list", prefix, err)
		}
		if err := emitPage(full, page.Contents, page.CommonPrefixes, fn); err != nil {
			return err
		}
	}
	return nil
}

// emitPage merges a page's objects and common prefixes, each sorted by the
// server, into one sequence in key order.
func emitPage(full string, objs []types.Object, prefixes []types.CommonPrefix, fn func(Entry) error) error {
	i, j := 0, 0
	for i < len(objs) || j < len(prefixes) {
		if j == len(prefixes) || i < len(objs) && aws.ToString(objs[i].Key) < aws.ToString(prefixes[j].Prefix) {
			o := objs[i]
			i++
			key := aws.ToString(o.Key)
			if key == full || !strings.HasPrefix(key, full) {
				continue
			}
			err := fn(Entry{
				Name:         key[len(full):],
				Size:         aws.ToInt64(o.Size),
				LastModified: aws.ToTime(o.LastModified),
				ETag:         aws.ToString(o.ETag),
			})
			if err != nil {
				return err
			}
			continue
		}
		p := aws.ToString(prefixes[j].Prefix)
		j++
		if !strings.HasPrefix(p, full) {
			continue
		}
		name := strings.TrimSuffix(p[len(full):], "/")
		if name == "" {
			continue // "dir//": no usable name
		}
		if err := fn(Entry{Name: name, IsPrefix: true}); err != nil {
			return err
		}
	}
	return nil
}
