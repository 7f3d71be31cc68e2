/** statfs(2) f_type of a namespace file (linux/magic.h): read by cni/ (CNI_NETNS check) and kernel/. */
export const NSFS_MAGIC = 0x6e736673;
