/*
 * fileprobe.h -- telling index files apart (fileprobe.c): the public
 * hnswc_probe_file, in one place for every caller (the CLI, the Python
 * binding) instead of each trying loaders or parsing headers on its own.
 *
 * No prefix of its own: the module implements only the public call. Each
 * format module knows its own header and answers for it; fileprobe.c reads
 * the first FILEPROBE_HEAD bytes once and asks them in turn:
 *   persist_probe   (persist.h)         hnswc's format: the magic number
 *   hnswlib_probe   (hnswlib_import.h)  hnswlib's format: a consistent header
 */
#ifndef HNSWC_FILEPROBE_H
#define HNSWC_FILEPROBE_H

/* Bytes read from the file: enough for both headers (hnswlib's is 96). */
#define FILEPROBE_HEAD 96u

#endif /* HNSWC_FILEPROBE_H */
