/* replay.c - the main() of every fuzz target when it is not built for
 * libFuzzer: feeds each file named on the command line, and every file in
 * each directory named there, to LLVMFuzzerTestOneInput() once.  Exits 1 if
 * a file cannot be read or nothing was replayed.  A target that finds a bad
 * input aborts inside LLVMFuzzerTestOneInput, which fails the test. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf = NULL;
	long len = -1;
	int rc = -1;

	if (!fp)
		goto out;
	if (fseek(fp, 0, SEEK_END) || (len = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET))
		goto out;
	buf = malloc((size_t)len + 1);
	if (!buf || fread(buf, 1, (size_t)len, fp) != (size_t)len)
		goto out;
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "cannot read %s\n", path);
	free(buf);
	if (fp)
		fclose(fp);
	return rc;
}

int main(int argc, char **argv)
{
	int files = 0;

	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);

		if (!d) {
			if (replay_file(argv[i]))
				return 1;
			files++;
			continue;
		}
		for (struct dirent *de; (de = readdir(d));) {
			char path[4096];

			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
			if (replay_file(path)) {
				closedir(d);
				return 1;
			}
			files++;
		}
		closedir(d);
	}
	printf("replayed %d inputs\n", files);
	return files > 0 ? 0 : 1;
}
