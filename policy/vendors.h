/*
 * vendors: the handset vendors Veto knows by name, as the IEEE registries attribute MAC blocks
 * to them (resolver/devices/oui.c normalises organisation names to these) and as the shipped
 * signatures and hostname patterns name them. The configuration checker accepts these in a
 * group's vendors: selector.
 *
 * The order is that of enum oui_vendor (resolver/devices/oui.h) after OUI_VENDOR_NONE:
 * vendors_names[i] is the name of enum value i + 1.
 */
#ifndef VETO_VENDORS_H
#define VETO_VENDORS_H

#include <stddef.h>

#define VENDORS_COUNT 8

/* "Xiaomi", "Oppo", "OnePlus", "Realme", "Vivo", "Huawei", "Honor", "Samsung" */
extern const char *const vendors_names[VENDORS_COUNT];

/* The index of the vendor named name[0..len) (case-insensitive), or -1. */
int vendors_find(const char *name, size_t len);

#endif
