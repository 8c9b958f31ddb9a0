/* Unit tests of the image store: the tar reader, safe unpacking (whiteouts,
 * opaque folders, refusals), manifest and config decoding, import of OCI
 * layout and docker save archives, names, use locks, rm, gc and limits. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "image_util.h"
#include "unit.h"

static char tmpdir[256];

static void fresh(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
    jr_image_rmtree(out, NULL);
    mkdir(out, 0755);
}

static ssize_t mem_read(void *arg, void *buf, size_t n)
{
    return jr_src_read(arg, buf, n);
}

/* Unpacks b (plain tar) into dir; returns jr_unpack_tar's result. */
static int unpack(const struct tbuf *b, const char *dir, int mode, char *err, size_t errlen)
{
    struct jr_src src;
    struct jr_tar t;
    struct jr_unpack u;
    int fd = open(dir, O_RDONLY | O_DIRECTORY), rc;

    jr_src_open_mem(&src, b->p, b->n, 1);
    jr_tar_init(&t, mem_read, &src);
    memset(&u, 0, sizeof u);
    u.mode = mode;
    u.budget = -1;
    rc = jr_unpack_tar(&u, &t, fd);
    snprintf(err, errlen, "%s", u.err);
    jr_src_close(&src);
    close(fd);
    return rc;
}

static int exists(const char *dir, const char *rel)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    return lstat(p, &st) == 0;
}

TEST(tar_reader)
{
    struct tbuf b = {NULL, 0, 0};
    char longname[300];
    struct jr_src src;
    struct jr_tar t;
    struct jr_tar_entry en;
    char data[16];

    memset(longname, 'a', 250);
    strcpy(longname + 250, "/file.txt");
    tar_add(&b, "dir/", '5', NULL, 0, 0755, NULL);
    tar_add(&b, "dir/hello", '0', "hi!", 3, 04755, NULL);
    tar_add(&b, longname, '0', "x", 1, 0644, NULL);
    tar_add(&b, "link", '2', NULL, 0, 0777, "/etc/passwd");
    tar_end(&b);
    jr_src_open_mem(&src, b.p, b.n, 1);
    jr_tar_init(&t, mem_read, &src);
    CHECK_INT(jr_tar_next(&t, &en), 1);
    CHECK_STR(en.path, "dir/");
    CHECK_INT(en.type, JR_TAR_DIR);
    CHECK_INT(jr_tar_next(&t, &en), 1);
    CHECK_STR(en.path, "dir/hello");
    CHECK_INT(en.mode, 04755);
    CHECK_INT(jr_tar_data(&t, data, sizeof data), 3);
    CHECK_INT(jr_tar_next(&t, &en), 1);
    CHECK_STR(en.path, longname);
    CHECK_INT(jr_tar_next(&t, &en), 1);
    CHECK_INT(en.type, JR_TAR_SYMLINK);
    CHECK_STR(en.link, "/etc/passwd");
    CHECK_INT(jr_tar_next(&t, &en), 0);
    jr_src_close(&src);
    /* A damaged header is an error, not a guess. */
    b.p[600 + 148] ^= 1;
    jr_src_open_mem(&src, b.p, b.n, 1);
    jr_tar_init(&t, mem_read, &src);
    CHECK_INT(jr_tar_next(&t, &en), 1);
    CHECK_INT(jr_tar_next(&t, &en), -1);
    CHECK(strstr(t.err, "checksum") != NULL);
    jr_src_close(&src);
    /* Cut short: an error. */
    b.p[600 + 148] ^= 1;
    jr_src_open_mem(&src, b.p, 512 + 512 + 100, 1);
    jr_tar_init(&t, mem_read, &src);
    CHECK_INT(jr_tar_next(&t, &en), 1);
    CHECK_INT(jr_tar_next(&t, &en), 1);
    CHECK_INT(jr_tar_data(&t, data, sizeof data), 3);
    CHECK_INT(jr_tar_next(&t, &en), -1);
    jr_src_close(&src);
    /* gzip'ed, the same entries */
    struct tbuf gz = gzip_of(&b);
    jr_src_open_mem(&src, gz.p, gz.n, 1);
    jr_tar_init(&t, mem_read, &src);
    CHECK_INT(jr_tar_next(&t, &en), 1);
    CHECK_INT(jr_tar_next(&t, &en), 1);
    CHECK_STR(en.path, "dir/hello");
    jr_src_close(&src);
    free(gz.p);
    free(b.p);
}

TEST(unpack_layer_whiteouts)
{
    struct tbuf b = {NULL, 0, 0};
    char dir[300], err[300], p[400], v[8];
    struct stat st;

    fresh(dir, sizeof dir, "layer");
    tar_add(&b, "./etc/", '5', NULL, 0, 0755, NULL);
    tar_add(&b, "etc/.wh.gone", '0', NULL, 0, 0644, NULL);
    tar_add(&b, "opt/.wh..wh..opq", '0', NULL, 0, 0644, NULL);
    tar_add(&b, "opt/new", '0', "n", 1, 0644, NULL);
    tar_add(&b, "bin/su", '0', "s", 1, 04755, NULL);
    tar_add(&b, "bin/sh", '2', NULL, 0, 0777, "/bin/busybox");
    tar_add(&b, "bin/hard", '1', NULL, 0, 0644, "bin/su");
    tar_end(&b);
    CHECK_INT(unpack(&b, dir, JR_UNPACK_LAYER, err, sizeof err), 0);
    snprintf(p, sizeof p, "%s/etc/gone", dir);
    CHECK(lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
    snprintf(p, sizeof p, "%s/opt", dir);
    CHECK_INT(getxattr(p, "user.overlay.opaque", v, sizeof v), 1);
    CHECK(exists(dir, "opt/new"));
    snprintf(p, sizeof p, "%s/bin/su", dir);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0755); /* setuid dropped */
    CHECK(stat(p, &st) == 0 && st.st_nlink == 2);
    free(b.p);
}

TEST(unpack_merge)
{
    struct tbuf l1 = {NULL, 0, 0}, l2 = {NULL, 0, 0};
    char dir[300], err[300];

    fresh(dir, sizeof dir, "merged");
    tar_add(&l1, "a", '0', "1", 1, 0644, NULL);
    tar_add(&l1, "keep", '0', "1", 1, 0644, NULL);
    tar_add(&l1, "d/old", '0', "1", 1, 0644, NULL);
    tar_end(&l1);
    tar_add(&l2, ".wh.a", '0', NULL, 0, 0644, NULL);
    tar_add(&l2, "d/.wh..wh..opq", '0', NULL, 0, 0644, NULL);
    tar_add(&l2, "d/new", '0', "2", 1, 0644, NULL);
    /* A whiteout does not hide what its own layer adds. */
    tar_add(&l2, "same", '0', "2", 1, 0644, NULL);
    tar_add(&l2, ".wh.same", '0', NULL, 0, 0644, NULL);
    tar_end(&l2);
    CHECK_INT(unpack(&l1, dir, JR_UNPACK_MERGE, err, sizeof err), 0);
    CHECK_INT(unpack(&l2, dir, JR_UNPACK_MERGE, err, sizeof err), 0);
    CHECK(!exists(dir, "a"));
    CHECK(exists(dir, "keep"));
    CHECK(!exists(dir, "d/old"));
    CHECK(exists(dir, "d/new"));
    CHECK(exists(dir, "same"));
    free(l1.p);
    free(l2.p);
}

TEST(unpack_refusals)
{
    static const char *const why[] = {"..", "symbolic link", "device node", "hard link"};
    char dir[300], err[300], outside[300];

    snprintf(outside, sizeof outside, "%s/outside", tmpdir);
    for (int k = 0; k < 4; k++) {
        struct tbuf b = {NULL, 0, 0};
        fresh(dir, sizeof dir, "evil");
        unlink(outside);
        if (k == 0) {
            tar_add(&b, "../outside", '0', "x", 1, 0644, NULL);
        } else if (k == 1) {
            tar_add(&b, "escape", '2', NULL, 0, 0777, tmpdir);
            tar_add(&b, "escape/outside", '0', "x", 1, 0644, NULL);
        } else if (k == 2) {
            tar_add(&b, "dev/sda", '4', NULL, 0, 0600, NULL);
        } else {
            tar_add(&b, "passwd", '1', NULL, 0, 0644, "../../etc/passwd");
        }
        tar_end(&b);
        CHECK_INT(unpack(&b, dir, JR_UNPACK_LAYER, err, sizeof err), -1);
        if (!strstr(err, why[k]))
            UNIT_FAIL("case %d: %s", k, err);
        CHECK(access(outside, F_OK) != 0);
        free(b.p);
    }
}

TEST(names)
{
    char n[300];
    CHECK(jr_image_name_valid("bb:1"));
    CHECK(jr_image_name_valid("busybox"));
    CHECK(jr_image_name_valid("127.0.0.1:5000/team/app:v1.2"));
    CHECK(jr_image_name_valid("localhost/app@sha256:"
                              "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    CHECK(!jr_image_name_valid("host"));
    CHECK(!jr_image_name_valid("Upper:1"));
    CHECK(!jr_image_name_valid("a/../b"));
    CHECK(!jr_image_name_valid("a:"));
    CHECK(!jr_image_name_valid("/abs"));
    CHECK(!jr_image_name_valid(""));
    jr_image_name_normal("bb", n, sizeof n);
    CHECK_STR(n, "bb:latest");
    jr_image_name_normal("localhost:5000/bb", n, sizeof n);
    CHECK_STR(n, "localhost:5000/bb:latest");
}

TEST(docs)
{
    struct jr_image_manifest m;
    struct jr_image_config c;
    char why[300];
    const char *idx = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
                      "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                      "\"digest\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
                      "\"size\":10,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
                      "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                      "\"digest\":\"sha256:2222222222222222222222222222222222222222222222222222222222222222\","
                      "\"size\":10,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";
    CHECK_INT(jr_image_manifest_parse(idx, strlen(idx), &m, why, sizeof why), 0);
    CHECK(m.is_index);
    CHECK_INT(m.nitems, 2);
    CHECK_INT(jr_image_pick_platform(&m, why, sizeof why), 1);
    jr_image_manifest_free(&m);
    const char *badm = "{\"schemaVersion\":2,\"config\":{\"digest\":\"md5:x\",\"size\":1},\"layers\":[]}";
    CHECK_INT(jr_image_manifest_parse(badm, strlen(badm), &m, why, sizeof why), -1);
    CHECK(strstr(why, "config.digest") != NULL);
    jr_image_manifest_free(&m);
    const char *cfg = "{\"os\":\"linux\",\"config\":{\"Entrypoint\":[\"/a\"],\"Cmd\":null,"
                      "\"Env\":[\"A=1\"],\"User\":\"1000:1000\"},\"rootfs\":{\"diff_ids\":[]}}";
    CHECK_INT(jr_image_config_parse(cfg, strlen(cfg), &c, why, sizeof why), 0);
    CHECK_STR(c.entrypoint[0], "/a");
    CHECK(c.cmd == NULL);
    CHECK_STR(c.user, "1000:1000");
    jr_image_config_free(&c);
    const char *badc = "{\"config\":{\"Env\":[\"novalue\"]},\"rootfs\":{\"diff_ids\":[]}}";
    CHECK_INT(jr_image_config_parse(badc, strlen(badc), &c, why, sizeof why), -1);
    CHECK(strstr(why, "Env[0]") != NULL);
    jr_image_config_free(&c);
}

static void two_layers(struct tbuf l[2])
{
    memset(l, 0, 2 * sizeof *l);
    tar_add(&l[0], "bin/", '5', NULL, 0, 0755, NULL);
    tar_add(&l[0], "bin/tool", '0', "#!/bin/sh\n", 10, 0755, NULL);
    tar_add(&l[0], "etc/secret", '0', "s", 1, 0600, NULL);
    tar_add(&l[0], "etc/passwd", '0', "root:x:0:0::/root:/bin/sh\napp:x:1234:4321::/:/bin/sh\n",
            52, 0644, NULL);
    tar_end(&l[0]);
    tar_add(&l[1], "etc/.wh.secret", '0', NULL, 0, 0644, NULL);
    tar_add(&l[1], "data/readme", '0', "two", 3, 0644, NULL);
    tar_end(&l[1]);
}

static struct jr_image_store *open_store(const char *name, int root, int64_t max_image,
                                         int64_t max_total)
{
    char dir[300];
    struct jr_image_opts o = {max_image, max_total, root};
    struct jr_image_store *s = NULL;
    struct jr_err e = {0, ""};

    fresh(dir, sizeof dir, name);
    if (jr_image_store_open(dir, &o, &s, &e))
        UNIT_FAIL("open: %s", e.msg);
    return s;
}

TEST(import_oci_and_use)
{
    struct tbuf l[2];
    char arch[300], why[200];
    struct jr_image_store *s = open_store("store1", JR_IMAGE_ROOT_OVERLAY, 0, 0);
    struct jr_image_info info;
    struct jr_image_use u;
    struct jr_err e = {0, ""};
    int uid, gid;

    two_layers(l);
    snprintf(arch, sizeof arch, "%s/oci.tar", tmpdir);
    write_oci_archive(arch, l, 2, "1", 0);
    if (jr_image_import(s, arch, "bb:1", &info, &e))
        UNIT_FAIL("import: %s", e.msg);
    CHECK_STR(info.name, "bb:1");
    CHECK_INT(info.nlayers, 2);
    CHECK_INT(jr_image_resolve(s, "bb:1", &u, &e), 0);
    CHECK_INT(u.nlayers, 2);
    CHECK(u.rootfs == NULL);
    CHECK_STR(u.workdir, "/data");
    CHECK_STR(u.env[1], "GREETING=hello");
    CHECK_STR(u.cmd[0], "/bin/sh");
    CHECK(exists(u.layers[0], "bin/tool"));
    CHECK(exists(u.layers[1], "etc/secret")); /* the whiteout node */
    CHECK_INT(jr_image_user(&u, "app", &uid, &gid, why, sizeof why), 0);
    CHECK_INT(uid, 1234);
    CHECK_INT(gid, 4321);
    CHECK_INT(jr_image_user(&u, "nobody", &uid, &gid, why, sizeof why), -1);
    /* rm is refused while a task holds the use lock. */
    int fd = open(u.lock, O_RDONLY);
    CHECK(fd >= 0 && flock(fd, LOCK_SH) == 0);
    CHECK_INT(jr_image_remove(s, "bb:1", &e), JR_E_CONFLICT);
    close(fd);
    jr_image_use_free(&u);
    CHECK_INT(jr_image_remove(s, "bb:1", &e), JR_OK);
    CHECK_INT(jr_image_resolve(s, "bb:1", &u, &e), JR_E_NOT_FOUND);
    /* rm collected what no name keeps */
    char blobs[400];
    snprintf(blobs, sizeof blobs, "%s/store1/images/blobs/sha256", tmpdir);
    DIR *d = opendir(blobs);
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d));)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    CHECK_INT(n, 0);
    jr_image_store_close(s);
    free(l[0].p);
    free(l[1].p);
}

TEST(import_copy_and_docker)
{
    struct tbuf l[2];
    char arch[300];
    struct jr_image_store *s = open_store("store2", JR_IMAGE_ROOT_COPY, 0, 0);
    struct jr_image_info info;
    struct jr_image_use u;
    struct jr_err e = {0, ""};
    struct jr_image_info *list;
    size_t n;

    two_layers(l);
    snprintf(arch, sizeof arch, "%s/docker.tar", tmpdir);
    write_docker_archive(arch, l, 2, "dk:2");
    if (jr_image_import(s, arch, NULL, &info, &e))
        UNIT_FAIL("import: %s", e.msg);
    CHECK_STR(info.name, "dk:2");
    CHECK_INT(jr_image_resolve(s, "dk:2", &u, &e), 0);
    CHECK(u.rootfs != NULL);
    if (u.rootfs) {
        CHECK(exists(u.rootfs, "bin/tool"));
        CHECK(exists(u.rootfs, "data/readme"));
        CHECK(!exists(u.rootfs, "etc/secret"));
    }
    CHECK_STR(u.entrypoint[0], "/bin/echo");
    jr_image_use_free(&u);
    CHECK_INT(jr_image_list(s, &list, &n, &e), 0);
    CHECK_INT(n, 1);
    free(list);
    jr_image_store_close(s);
    free(l[0].p);
    free(l[1].p);
}

TEST(import_refusals_and_limits)
{
    struct tbuf l[2], evil = {NULL, 0, 0};
    char arch[300];
    struct jr_image_store *s = open_store("store3", JR_IMAGE_ROOT_OVERLAY, 0, 0);
    struct jr_err e = {0, ""};
    struct jr_image_info *list;
    struct jr_image_gc_stats st;
    size_t n;

    two_layers(l);
    snprintf(arch, sizeof arch, "%s/bad.tar", tmpdir);
    write_oci_archive(arch, l, 2, "1", 1);
    CHECK_INT(jr_image_import(s, arch, "bad:1", NULL, &e), JR_E_INVALID);
    CHECK(strstr(e.msg, "not to its name") != NULL);
    tar_add(&evil, "../../../escaped", '0', "x", 1, 0644, NULL);
    tar_end(&evil);
    write_oci_archive(arch, &evil, 1, "1", 0);
    CHECK_INT(jr_image_import(s, arch, "evil:1", NULL, &e), JR_E_INVALID);
    CHECK(strstr(e.msg, "..") != NULL);
    CHECK_INT(jr_image_list(s, &list, &n, &e), 0);
    CHECK_INT(n, 0);
    free(list);
    CHECK_INT(jr_image_gc(s, &st, &e), 0);
    jr_image_store_close(s);
    /* A limit smaller than the image. */
    s = open_store("store4", JR_IMAGE_ROOT_OVERLAY, 5, 0);
    write_oci_archive(arch, l, 2, "1", 0);
    CHECK_INT(jr_image_import(s, arch, "big:1", NULL, &e), JR_E_FULL);
    if (!strstr(e.msg, "max_image_size"))
        UNIT_FAIL("%s", e.msg);
    jr_image_store_close(s);
    s = open_store("store5", JR_IMAGE_ROOT_OVERLAY, 0, 100);
    CHECK_INT(jr_image_import(s, arch, "big:1", NULL, &e), JR_E_FULL);
    CHECK(strstr(e.msg, "max_store_size") != NULL);
    jr_image_store_close(s);
    free(l[0].p);
    free(l[1].p);
    free(evil.p);
}

TEST(blob_writer_resume)
{
    struct jr_image_store *s = open_store("store6", JR_IMAGE_ROOT_OVERLAY, 0, 0);
    struct jr_image_blob_w *w;
    struct jr_err e = {0, ""};
    char d[JR_DIGEST_LEN + 1];
    int64_t off;
    const char *text = "hello, blob";

    digest_of(text, strlen(text), d);
    CHECK_INT(jr_image_blob_begin(s, d, 0, &w, &off, &e), 0);
    CHECK_INT(off, 0);
    jr_image_blob_write(w, text, 5, &e);
    jr_image_blob_abort(w, 1);
    CHECK_INT(jr_image_blob_begin(s, d, 0, &w, &off, &e), 0);
    CHECK_INT(off, 5);
    jr_image_blob_write(w, text + 5, strlen(text) - 5, &e);
    CHECK_INT(jr_image_blob_commit(w, &e), 0);
    CHECK(jr_image_blob_has(s, d));
    /* a mismatch is refused and leaves nothing */
    digest_of("other", 5, d);
    CHECK_INT(jr_image_blob_begin(s, d, 0, &w, &off, &e), 0);
    jr_image_blob_write(w, text, strlen(text), &e);
    CHECK_INT(jr_image_blob_commit(w, &e), JR_E_INVALID);
    CHECK(strstr(e.msg, "digest mismatch") != NULL);
    CHECK(!jr_image_blob_has(s, d));
    jr_image_store_close(s);
}

TEST(probe)
{
    struct jr_image_store *s = open_store("store7", JR_IMAGE_ROOT_AUTO, 0, 0);
    char why[200];
    int k = jr_image_store_strategy(s, why, sizeof why);

    CHECK(k == JR_IMAGE_ROOT_OVERLAY || k == JR_IMAGE_ROOT_COPY);
    printf("# task roots here: %s (%s)\n", k == JR_IMAGE_ROOT_OVERLAY ? "overlay" : "copy", why);
    jr_image_store_close(s);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/jobrt-test-image-%d", (int)getpid());
    mkdir(tmpdir, 0755);
    RUN(tar_reader);
    RUN(unpack_layer_whiteouts);
    RUN(unpack_merge);
    RUN(unpack_refusals);
    RUN(names);
    RUN(docs);
    RUN(import_oci_and_use);
    RUN(import_copy_and_docker);
    RUN(import_refusals_and_limits);
    RUN(blob_writer_resume);
    RUN(probe);
    jr_image_rmtree(tmpdir, NULL);
    return UNIT_DONE();
}
