/* version: the release number printed by --version. */
#ifndef DROPSHIP_VERSION_H
#define DROPSHIP_VERSION_H
#define DROPSHIP_VERSION "0.1.0"
#endif
