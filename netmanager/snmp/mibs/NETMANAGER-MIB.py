# mypy: ignore-errors
# ruff: noqa
# fmt: off
# SNMP MIB module (NETMANAGER-MIB) expressed in pysnmp data model.
#
# This Python module is designed to be imported and executed by the
# pysnmp library.
#
# See https://www.pysnmp.com/pysnmp for further information.
#
# Notes
# -----
# ASN.1 source: netmanager/snmp/mibs/NETMANAGER-MIB

if 'mibBuilder' not in globals():
    import sys

    sys.stderr.write(__doc__)
    sys.exit(1)

# Import base ASN.1 objects even if this MIB does not use it

(Integer,
 OctetString,
 ObjectIdentifier) = mibBuilder.import_symbols(
    "ASN1",
    "Integer",
    "OctetString",
    "ObjectIdentifier")

(NamedValues,) = mibBuilder.import_symbols(
    "ASN1-ENUMERATION",
    "NamedValues")
(ConstraintsIntersection,
 ConstraintsUnion,
 SingleValueConstraint,
 ValueRangeConstraint,
 ValueSizeConstraint) = mibBuilder.import_symbols(
    "ASN1-REFINEMENT",
    "ConstraintsIntersection",
    "ConstraintsUnion",
    "SingleValueConstraint",
    "ValueRangeConstraint",
    "ValueSizeConstraint")

# Import SMI symbols from the MIBs this MIB depends on

(InterfaceIndex,
 ifIndex) = mibBuilder.import_symbols(
    "IF-MIB",
    "InterfaceIndex",
    "ifIndex")

(ModuleCompliance,
 NotificationGroup,
 ObjectGroup) = mibBuilder.import_symbols(
    "SNMPv2-CONF",
    "ModuleCompliance",
    "NotificationGroup",
    "ObjectGroup")

(Bits,
 Counter32,
 Counter64,
 Gauge32,
 Integer32,
 IpAddress,
 ModuleIdentity,
 MibIdentifier,
 NotificationType,
 ObjectIdentity,
 MibScalar,
 MibTable,
 MibTableRow,
 MibTableColumn,
 TimeTicks,
 Unsigned32,
 experimental,
 iso) = mibBuilder.import_symbols(
    "SNMPv2-SMI",
    "Bits",
    "Counter32",
    "Counter64",
    "Gauge32",
    "Integer32",
    "IpAddress",
    "ModuleIdentity",
    "MibIdentifier",
    "NotificationType",
    "ObjectIdentity",
    "MibScalar",
    "MibTable",
    "MibTableRow",
    "MibTableColumn",
    "TimeTicks",
    "Unsigned32",
    "experimental",
    "iso")

(DisplayString,
 MacAddress,
 PhysAddress,
 RowStatus,
 TextualConvention,
 TimeStamp,
 TruthValue) = mibBuilder.import_symbols(
    "SNMPv2-TC",
    "DisplayString",
    "MacAddress",
    "PhysAddress",
    "RowStatus",
    "TextualConvention",
    "TimeStamp",
    "TruthValue")


# MODULE-IDENTITY

netmanagerMIB = ModuleIdentity(
    (1, 3, 6, 1, 3, 7171)
)
if mibBuilder.loadTexts:
    netmanagerMIB.setRevisions(
        ("2026-12-06 17:30",
         "2026-12-06 14:30",
         "2026-12-06 14:00",
         "2026-12-06 06:00",
         "2026-12-06 05:00",
         "2026-12-06 04:00",
         "2026-12-06 03:00",
         "2026-12-06 02:00",
         "2026-12-06 01:00",
         "2026-12-06 00:00",
         "2026-12-05 00:00",
         "2026-12-04 02:00",
         "2025-11-22 01:00",
         "2025-11-22 00:00")
    )


# Types definitions


# TEXTUAL-CONVENTIONS



class NmName(TextualConvention, OctetString):
    status = "current"
    displayHint = "32a"
    subtypeSpec = OctetString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(1, 32),
    )



class NmOptionalName(TextualConvention, OctetString):
    status = "current"
    displayHint = "32a"
    subtypeSpec = OctetString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 32),
    )



class NmIfName(TextualConvention, OctetString):
    status = "current"
    displayHint = "15a"
    subtypeSpec = OctetString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 15),
    )



class NmOperStatus(TextualConvention, Integer32):
    status = "current"
    subtypeSpec = Integer32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        SingleValueConstraint(
            *(1,
              2,
              3,
              4,
              5,
              6,
              7)
        )
    )
    namedValues = NamedValues(
        *(("up", 1),
          ("down", 2),
          ("testing", 3),
          ("unknown", 4),
          ("dormant", 5),
          ("notPresent", 6),
          ("lowerLayerDown", 7))
    )



# MIB Managed Objects in the order of their OIDs

_NmNotifications_ObjectIdentity = ObjectIdentity
nmNotifications = _NmNotifications_ObjectIdentity(
    (1, 3, 6, 1, 3, 7171, 0)
)
_NmObjects_ObjectIdentity = ObjectIdentity
nmObjects = _NmObjects_ObjectIdentity(
    (1, 3, 6, 1, 3, 7171, 1)
)
_NmConfig_ObjectIdentity = ObjectIdentity
nmConfig = _NmConfig_ObjectIdentity(
    (1, 3, 6, 1, 3, 7171, 1, 1)
)
_NmNetworkTable_Object = MibTable
nmNetworkTable = _NmNetworkTable_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 1)
)
if mibBuilder.loadTexts:
    nmNetworkTable.setStatus("current")
_NmNetworkEntry_Object = MibTableRow
nmNetworkEntry = _NmNetworkEntry_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 1, 1)
)
nmNetworkEntry.setIndexNames(
    (0, "NETMANAGER-MIB", "nmNetworkName"),
)
if mibBuilder.loadTexts:
    nmNetworkEntry.setStatus("current")
_NmNetworkName_Type = NmName
_NmNetworkName_Object = MibTableColumn
nmNetworkName = _NmNetworkName_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 1, 1, 1),
    _NmNetworkName_Type()
)
nmNetworkName.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmNetworkName.setStatus("current")


class _NmNetworkEncap_Type(Integer32):
    """Custom type nmNetworkEncap based on Integer32"""
    subtypeSpec = Integer32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        SingleValueConstraint(
            *(1,
              2)
        )
    )
    namedValues = NamedValues(
        *(("vlan", 1),
          ("vxlan", 2))
    )


_NmNetworkEncap_Type.__name__ = "Integer32"
_NmNetworkEncap_Object = MibTableColumn
nmNetworkEncap = _NmNetworkEncap_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 1, 1, 2),
    _NmNetworkEncap_Type()
)
nmNetworkEncap.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmNetworkEncap.setStatus("current")


class _NmNetworkSegmentId_Type(Unsigned32):
    """Custom type nmNetworkSegmentId based on Unsigned32"""
    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(1, 16777215),
    )


_NmNetworkSegmentId_Type.__name__ = "Unsigned32"
_NmNetworkSegmentId_Object = MibTableColumn
nmNetworkSegmentId = _NmNetworkSegmentId_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 1, 1, 3),
    _NmNetworkSegmentId_Type()
)
nmNetworkSegmentId.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmNetworkSegmentId.setStatus("current")


class _NmNetworkBridge_Type(NmIfName):
    """Custom type nmNetworkBridge based on NmIfName"""
    defaultValue = OctetString("")


_NmNetworkBridge_Type.__name__ = "NmIfName"
_NmNetworkBridge_Object = MibTableColumn
nmNetworkBridge = _NmNetworkBridge_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 1, 1, 4),
    _NmNetworkBridge_Type()
)
nmNetworkBridge.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmNetworkBridge.setStatus("current")


class _NmNetworkUnderlay_Type(NmIfName):
    """Custom type nmNetworkUnderlay based on NmIfName"""
    defaultValue = OctetString("")


_NmNetworkUnderlay_Type.__name__ = "NmIfName"
_NmNetworkUnderlay_Object = MibTableColumn
nmNetworkUnderlay = _NmNetworkUnderlay_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 1, 1, 5),
    _NmNetworkUnderlay_Type()
)
nmNetworkUnderlay.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmNetworkUnderlay.setStatus("current")


class _NmNetworkLocalAddress_Type(IpAddress):
    """Custom type nmNetworkLocalAddress based on IpAddress"""
    defaultHexValue = "00000000"


_NmNetworkLocalAddress_Type.__name__ = "IpAddress"
_NmNetworkLocalAddress_Object = MibTableColumn
nmNetworkLocalAddress = _NmNetworkLocalAddress_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 1, 1, 6),
    _NmNetworkLocalAddress_Type()
)
nmNetworkLocalAddress.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmNetworkLocalAddress.setStatus("current")


class _NmNetworkAddress_Type(IpAddress):
    """Custom type nmNetworkAddress based on IpAddress"""
    defaultHexValue = "00000000"


_NmNetworkAddress_Type.__name__ = "IpAddress"
_NmNetworkAddress_Object = MibTableColumn
nmNetworkAddress = _NmNetworkAddress_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 1, 1, 7),
    _NmNetworkAddress_Type()
)
nmNetworkAddress.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmNetworkAddress.setStatus("current")


class _NmNetworkPrefixLength_Type(Unsigned32):
    """Custom type nmNetworkPrefixLength based on Unsigned32"""
    defaultValue = 0

    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(0, 32),
    )


_NmNetworkPrefixLength_Type.__name__ = "Unsigned32"
_NmNetworkPrefixLength_Object = MibTableColumn
nmNetworkPrefixLength = _NmNetworkPrefixLength_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 1, 1, 8),
    _NmNetworkPrefixLength_Type()
)
nmNetworkPrefixLength.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmNetworkPrefixLength.setStatus("current")


class _NmNetworkIsolated_Type(TruthValue):
    """Custom type nmNetworkIsolated based on TruthValue"""
    defaultValue = 1


_NmNetworkIsolated_Type.__name__ = "TruthValue"
_NmNetworkIsolated_Object = MibTableColumn
nmNetworkIsolated = _NmNetworkIsolated_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 1, 1, 9),
    _NmNetworkIsolated_Type()
)
nmNetworkIsolated.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmNetworkIsolated.setStatus("current")
_NmNetworkRowStatus_Type = RowStatus
_NmNetworkRowStatus_Object = MibTableColumn
nmNetworkRowStatus = _NmNetworkRowStatus_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 1, 1, 10),
    _NmNetworkRowStatus_Type()
)
nmNetworkRowStatus.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmNetworkRowStatus.setStatus("current")
_NmPeerTable_Object = MibTable
nmPeerTable = _NmPeerTable_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 2)
)
if mibBuilder.loadTexts:
    nmPeerTable.setStatus("current")
_NmPeerEntry_Object = MibTableRow
nmPeerEntry = _NmPeerEntry_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 2, 1)
)
nmPeerEntry.setIndexNames(
    (0, "NETMANAGER-MIB", "nmNetworkName"),
    (0, "NETMANAGER-MIB", "nmPeerAddress"),
)
if mibBuilder.loadTexts:
    nmPeerEntry.setStatus("current")
_NmPeerAddress_Type = IpAddress
_NmPeerAddress_Object = MibTableColumn
nmPeerAddress = _NmPeerAddress_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 2, 1, 1),
    _NmPeerAddress_Type()
)
nmPeerAddress.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmPeerAddress.setStatus("current")
_NmPeerRowStatus_Type = RowStatus
_NmPeerRowStatus_Object = MibTableColumn
nmPeerRowStatus = _NmPeerRowStatus_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 2, 1, 2),
    _NmPeerRowStatus_Type()
)
nmPeerRowStatus.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmPeerRowStatus.setStatus("current")
_NmPortTable_Object = MibTable
nmPortTable = _NmPortTable_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 3)
)
if mibBuilder.loadTexts:
    nmPortTable.setStatus("current")
_NmPortEntry_Object = MibTableRow
nmPortEntry = _NmPortEntry_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 3, 1)
)
nmPortEntry.setIndexNames(
    (0, "NETMANAGER-MIB", "nmPortVm"),
    (0, "NETMANAGER-MIB", "nmPortNetwork"),
)
if mibBuilder.loadTexts:
    nmPortEntry.setStatus("current")
_NmPortVm_Type = NmName
_NmPortVm_Object = MibTableColumn
nmPortVm = _NmPortVm_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 3, 1, 1),
    _NmPortVm_Type()
)
nmPortVm.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmPortVm.setStatus("current")
_NmPortNetwork_Type = NmName
_NmPortNetwork_Object = MibTableColumn
nmPortNetwork = _NmPortNetwork_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 3, 1, 2),
    _NmPortNetwork_Type()
)
nmPortNetwork.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmPortNetwork.setStatus("current")


class _NmPortIfName_Type(NmIfName):
    """Custom type nmPortIfName based on NmIfName"""
    defaultValue = OctetString("")


_NmPortIfName_Type.__name__ = "NmIfName"
_NmPortIfName_Object = MibTableColumn
nmPortIfName = _NmPortIfName_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 3, 1, 3),
    _NmPortIfName_Type()
)
nmPortIfName.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmPortIfName.setStatus("current")


class _NmPortVmIfName_Type(NmIfName):
    """Custom type nmPortVmIfName based on NmIfName"""
    defaultValue = OctetString("")


_NmPortVmIfName_Type.__name__ = "NmIfName"
_NmPortVmIfName_Object = MibTableColumn
nmPortVmIfName = _NmPortVmIfName_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 3, 1, 4),
    _NmPortVmIfName_Type()
)
nmPortVmIfName.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmPortVmIfName.setStatus("current")
_NmPortAddress_Type = IpAddress
_NmPortAddress_Object = MibTableColumn
nmPortAddress = _NmPortAddress_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 3, 1, 5),
    _NmPortAddress_Type()
)
nmPortAddress.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmPortAddress.setStatus("current")


class _NmPortPrefixLength_Type(Unsigned32):
    """Custom type nmPortPrefixLength based on Unsigned32"""
    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(0, 32),
    )


_NmPortPrefixLength_Type.__name__ = "Unsigned32"
_NmPortPrefixLength_Object = MibTableColumn
nmPortPrefixLength = _NmPortPrefixLength_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 3, 1, 6),
    _NmPortPrefixLength_Type()
)
nmPortPrefixLength.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmPortPrefixLength.setStatus("current")


class _NmPortMacAddress_Type(MacAddress):
    """Custom type nmPortMacAddress based on MacAddress"""
    defaultHexValue = "000000000000"


_NmPortMacAddress_Type.__name__ = "MacAddress"
_NmPortMacAddress_Object = MibTableColumn
nmPortMacAddress = _NmPortMacAddress_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 3, 1, 7),
    _NmPortMacAddress_Type()
)
nmPortMacAddress.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmPortMacAddress.setStatus("current")


class _NmPortAdminStatus_Type(Integer32):
    """Custom type nmPortAdminStatus based on Integer32"""
    defaultValue = 1

    subtypeSpec = Integer32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        SingleValueConstraint(
            *(1,
              2)
        )
    )
    namedValues = NamedValues(
        *(("up", 1),
          ("down", 2))
    )


_NmPortAdminStatus_Type.__name__ = "Integer32"
_NmPortAdminStatus_Object = MibTableColumn
nmPortAdminStatus = _NmPortAdminStatus_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 3, 1, 8),
    _NmPortAdminStatus_Type()
)
nmPortAdminStatus.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmPortAdminStatus.setStatus("current")
_NmPortRowStatus_Type = RowStatus
_NmPortRowStatus_Object = MibTableColumn
nmPortRowStatus = _NmPortRowStatus_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 3, 1, 9),
    _NmPortRowStatus_Type()
)
nmPortRowStatus.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmPortRowStatus.setStatus("current")
_NmShapeTable_Object = MibTable
nmShapeTable = _NmShapeTable_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 4)
)
if mibBuilder.loadTexts:
    nmShapeTable.setStatus("current")
_NmShapeEntry_Object = MibTableRow
nmShapeEntry = _NmShapeEntry_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 4, 1)
)
nmShapeEntry.setIndexNames(
    (0, "NETMANAGER-MIB", "nmShapeVm"),
    (0, "NETMANAGER-MIB", "nmShapeNetwork"),
    (0, "NETMANAGER-MIB", "nmShapePeer"),
)
if mibBuilder.loadTexts:
    nmShapeEntry.setStatus("current")
_NmShapeVm_Type = NmName
_NmShapeVm_Object = MibTableColumn
nmShapeVm = _NmShapeVm_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 4, 1, 1),
    _NmShapeVm_Type()
)
nmShapeVm.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmShapeVm.setStatus("current")
_NmShapeNetwork_Type = NmName
_NmShapeNetwork_Object = MibTableColumn
nmShapeNetwork = _NmShapeNetwork_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 4, 1, 2),
    _NmShapeNetwork_Type()
)
nmShapeNetwork.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmShapeNetwork.setStatus("current")
_NmShapePeer_Type = NmOptionalName
_NmShapePeer_Object = MibTableColumn
nmShapePeer = _NmShapePeer_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 4, 1, 3),
    _NmShapePeer_Type()
)
nmShapePeer.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmShapePeer.setStatus("current")


class _NmShapePeerAddress_Type(IpAddress):
    """Custom type nmShapePeerAddress based on IpAddress"""
    defaultHexValue = "00000000"


_NmShapePeerAddress_Type.__name__ = "IpAddress"
_NmShapePeerAddress_Object = MibTableColumn
nmShapePeerAddress = _NmShapePeerAddress_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 4, 1, 4),
    _NmShapePeerAddress_Type()
)
nmShapePeerAddress.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmShapePeerAddress.setStatus("current")


class _NmShapeRate_Type(Unsigned32):
    """Custom type nmShapeRate based on Unsigned32"""
    defaultValue = 0


_NmShapeRate_Type.__name__ = "Unsigned32"
_NmShapeRate_Object = MibTableColumn
nmShapeRate = _NmShapeRate_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 4, 1, 5),
    _NmShapeRate_Type()
)
nmShapeRate.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmShapeRate.setStatus("current")
if mibBuilder.loadTexts:
    nmShapeRate.setUnits("kbit/s")


class _NmShapeBurst_Type(Unsigned32):
    """Custom type nmShapeBurst based on Unsigned32"""
    defaultValue = 0


_NmShapeBurst_Type.__name__ = "Unsigned32"
_NmShapeBurst_Object = MibTableColumn
nmShapeBurst = _NmShapeBurst_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 4, 1, 6),
    _NmShapeBurst_Type()
)
nmShapeBurst.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmShapeBurst.setStatus("current")
if mibBuilder.loadTexts:
    nmShapeBurst.setUnits("bytes")


class _NmShapeDelay_Type(Unsigned32):
    """Custom type nmShapeDelay based on Unsigned32"""
    defaultValue = 0

    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(0, 3600000000),
    )


_NmShapeDelay_Type.__name__ = "Unsigned32"
_NmShapeDelay_Object = MibTableColumn
nmShapeDelay = _NmShapeDelay_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 4, 1, 7),
    _NmShapeDelay_Type()
)
nmShapeDelay.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmShapeDelay.setStatus("current")
if mibBuilder.loadTexts:
    nmShapeDelay.setUnits("microseconds")


class _NmShapeJitter_Type(Unsigned32):
    """Custom type nmShapeJitter based on Unsigned32"""
    defaultValue = 0

    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(0, 3600000000),
    )


_NmShapeJitter_Type.__name__ = "Unsigned32"
_NmShapeJitter_Object = MibTableColumn
nmShapeJitter = _NmShapeJitter_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 4, 1, 8),
    _NmShapeJitter_Type()
)
nmShapeJitter.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmShapeJitter.setStatus("current")
if mibBuilder.loadTexts:
    nmShapeJitter.setUnits("microseconds")


class _NmShapeLoss_Type(Unsigned32):
    """Custom type nmShapeLoss based on Unsigned32"""
    defaultValue = 0

    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(0, 1000000),
    )


_NmShapeLoss_Type.__name__ = "Unsigned32"
_NmShapeLoss_Object = MibTableColumn
nmShapeLoss = _NmShapeLoss_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 4, 1, 9),
    _NmShapeLoss_Type()
)
nmShapeLoss.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmShapeLoss.setStatus("current")
if mibBuilder.loadTexts:
    nmShapeLoss.setUnits("parts per million")


class _NmShapeQueue_Type(Unsigned32):
    """Custom type nmShapeQueue based on Unsigned32"""
    defaultValue = 0

    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(0, 1000000),
    )


_NmShapeQueue_Type.__name__ = "Unsigned32"
_NmShapeQueue_Object = MibTableColumn
nmShapeQueue = _NmShapeQueue_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 4, 1, 10),
    _NmShapeQueue_Type()
)
nmShapeQueue.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmShapeQueue.setStatus("current")
if mibBuilder.loadTexts:
    nmShapeQueue.setUnits("packets")
_NmShapeRowStatus_Type = RowStatus
_NmShapeRowStatus_Object = MibTableColumn
nmShapeRowStatus = _NmShapeRowStatus_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 4, 1, 11),
    _NmShapeRowStatus_Type()
)
nmShapeRowStatus.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmShapeRowStatus.setStatus("current")
_NmRuleTable_Object = MibTable
nmRuleTable = _NmRuleTable_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 5)
)
if mibBuilder.loadTexts:
    nmRuleTable.setStatus("current")
_NmRuleEntry_Object = MibTableRow
nmRuleEntry = _NmRuleEntry_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 5, 1)
)
nmRuleEntry.setIndexNames(
    (0, "NETMANAGER-MIB", "nmRuleIndex"),
)
if mibBuilder.loadTexts:
    nmRuleEntry.setStatus("current")


class _NmRuleIndex_Type(Unsigned32):
    """Custom type nmRuleIndex based on Unsigned32"""
    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(1, 65535),
    )


_NmRuleIndex_Type.__name__ = "Unsigned32"
_NmRuleIndex_Object = MibTableColumn
nmRuleIndex = _NmRuleIndex_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 5, 1, 1),
    _NmRuleIndex_Type()
)
nmRuleIndex.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmRuleIndex.setStatus("current")


class _NmRuleAction_Type(Integer32):
    """Custom type nmRuleAction based on Integer32"""
    subtypeSpec = Integer32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        SingleValueConstraint(
            *(1,
              2)
        )
    )
    namedValues = NamedValues(
        *(("allow", 1),
          ("deny", 2))
    )


_NmRuleAction_Type.__name__ = "Integer32"
_NmRuleAction_Object = MibTableColumn
nmRuleAction = _NmRuleAction_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 5, 1, 2),
    _NmRuleAction_Type()
)
nmRuleAction.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmRuleAction.setStatus("current")
_NmRuleSource_Type = NmName
_NmRuleSource_Object = MibTableColumn
nmRuleSource = _NmRuleSource_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 5, 1, 3),
    _NmRuleSource_Type()
)
nmRuleSource.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmRuleSource.setStatus("current")


class _NmRuleSourceAddress_Type(IpAddress):
    """Custom type nmRuleSourceAddress based on IpAddress"""
    defaultHexValue = "00000000"


_NmRuleSourceAddress_Type.__name__ = "IpAddress"
_NmRuleSourceAddress_Object = MibTableColumn
nmRuleSourceAddress = _NmRuleSourceAddress_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 5, 1, 4),
    _NmRuleSourceAddress_Type()
)
nmRuleSourceAddress.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmRuleSourceAddress.setStatus("current")


class _NmRuleSourcePrefixLength_Type(Unsigned32):
    """Custom type nmRuleSourcePrefixLength based on Unsigned32"""
    defaultValue = 0

    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(0, 32),
    )


_NmRuleSourcePrefixLength_Type.__name__ = "Unsigned32"
_NmRuleSourcePrefixLength_Object = MibTableColumn
nmRuleSourcePrefixLength = _NmRuleSourcePrefixLength_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 5, 1, 5),
    _NmRuleSourcePrefixLength_Type()
)
nmRuleSourcePrefixLength.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmRuleSourcePrefixLength.setStatus("current")
_NmRuleDestination_Type = NmName
_NmRuleDestination_Object = MibTableColumn
nmRuleDestination = _NmRuleDestination_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 5, 1, 6),
    _NmRuleDestination_Type()
)
nmRuleDestination.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmRuleDestination.setStatus("current")


class _NmRuleDestinationAddress_Type(IpAddress):
    """Custom type nmRuleDestinationAddress based on IpAddress"""
    defaultHexValue = "00000000"


_NmRuleDestinationAddress_Type.__name__ = "IpAddress"
_NmRuleDestinationAddress_Object = MibTableColumn
nmRuleDestinationAddress = _NmRuleDestinationAddress_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 5, 1, 7),
    _NmRuleDestinationAddress_Type()
)
nmRuleDestinationAddress.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmRuleDestinationAddress.setStatus("current")


class _NmRuleDestinationPrefixLength_Type(Unsigned32):
    """Custom type nmRuleDestinationPrefixLength based on Unsigned32"""
    defaultValue = 0

    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(0, 32),
    )


_NmRuleDestinationPrefixLength_Type.__name__ = "Unsigned32"
_NmRuleDestinationPrefixLength_Object = MibTableColumn
nmRuleDestinationPrefixLength = _NmRuleDestinationPrefixLength_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 5, 1, 8),
    _NmRuleDestinationPrefixLength_Type()
)
nmRuleDestinationPrefixLength.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmRuleDestinationPrefixLength.setStatus("current")


class _NmRuleProtocol_Type(Integer32):
    """Custom type nmRuleProtocol based on Integer32"""
    defaultValue = 1

    subtypeSpec = Integer32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        SingleValueConstraint(
            *(1,
              2,
              3,
              4)
        )
    )
    namedValues = NamedValues(
        *(("any", 1),
          ("icmp", 2),
          ("tcp", 3),
          ("udp", 4))
    )


_NmRuleProtocol_Type.__name__ = "Integer32"
_NmRuleProtocol_Object = MibTableColumn
nmRuleProtocol = _NmRuleProtocol_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 5, 1, 9),
    _NmRuleProtocol_Type()
)
nmRuleProtocol.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmRuleProtocol.setStatus("current")


class _NmRulePortFirst_Type(Unsigned32):
    """Custom type nmRulePortFirst based on Unsigned32"""
    defaultValue = 0

    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(0, 65535),
    )


_NmRulePortFirst_Type.__name__ = "Unsigned32"
_NmRulePortFirst_Object = MibTableColumn
nmRulePortFirst = _NmRulePortFirst_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 5, 1, 10),
    _NmRulePortFirst_Type()
)
nmRulePortFirst.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmRulePortFirst.setStatus("current")


class _NmRulePortLast_Type(Unsigned32):
    """Custom type nmRulePortLast based on Unsigned32"""
    defaultValue = 0

    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(0, 65535),
    )


_NmRulePortLast_Type.__name__ = "Unsigned32"
_NmRulePortLast_Object = MibTableColumn
nmRulePortLast = _NmRulePortLast_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 5, 1, 11),
    _NmRulePortLast_Type()
)
nmRulePortLast.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmRulePortLast.setStatus("current")
_NmRuleRowStatus_Type = RowStatus
_NmRuleRowStatus_Object = MibTableColumn
nmRuleRowStatus = _NmRuleRowStatus_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 5, 1, 12),
    _NmRuleRowStatus_Type()
)
nmRuleRowStatus.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmRuleRowStatus.setStatus("current")
_NmRouteTable_Object = MibTable
nmRouteTable = _NmRouteTable_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 6)
)
if mibBuilder.loadTexts:
    nmRouteTable.setStatus("current")
_NmRouteEntry_Object = MibTableRow
nmRouteEntry = _NmRouteEntry_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 6, 1)
)
nmRouteEntry.setIndexNames(
    (0, "NETMANAGER-MIB", "nmRouteVm"),
    (0, "NETMANAGER-MIB", "nmRouteDestination"),
    (0, "NETMANAGER-MIB", "nmRoutePrefixLength"),
)
if mibBuilder.loadTexts:
    nmRouteEntry.setStatus("current")
_NmRouteVm_Type = NmName
_NmRouteVm_Object = MibTableColumn
nmRouteVm = _NmRouteVm_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 6, 1, 1),
    _NmRouteVm_Type()
)
nmRouteVm.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmRouteVm.setStatus("current")
_NmRouteDestination_Type = IpAddress
_NmRouteDestination_Object = MibTableColumn
nmRouteDestination = _NmRouteDestination_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 6, 1, 2),
    _NmRouteDestination_Type()
)
nmRouteDestination.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmRouteDestination.setStatus("current")


class _NmRoutePrefixLength_Type(Unsigned32):
    """Custom type nmRoutePrefixLength based on Unsigned32"""
    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(0, 32),
    )


_NmRoutePrefixLength_Type.__name__ = "Unsigned32"
_NmRoutePrefixLength_Object = MibTableColumn
nmRoutePrefixLength = _NmRoutePrefixLength_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 6, 1, 3),
    _NmRoutePrefixLength_Type()
)
nmRoutePrefixLength.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmRoutePrefixLength.setStatus("current")
_NmRouteNextHop_Type = IpAddress
_NmRouteNextHop_Object = MibTableColumn
nmRouteNextHop = _NmRouteNextHop_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 6, 1, 4),
    _NmRouteNextHop_Type()
)
nmRouteNextHop.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmRouteNextHop.setStatus("current")
_NmRouteRowStatus_Type = RowStatus
_NmRouteRowStatus_Object = MibTableColumn
nmRouteRowStatus = _NmRouteRowStatus_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 6, 1, 5),
    _NmRouteRowStatus_Type()
)
nmRouteRowStatus.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmRouteRowStatus.setStatus("current")
_NmDocumentTable_Object = MibTable
nmDocumentTable = _NmDocumentTable_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 7)
)
if mibBuilder.loadTexts:
    nmDocumentTable.setStatus("current")
_NmDocumentEntry_Object = MibTableRow
nmDocumentEntry = _NmDocumentEntry_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 7, 1)
)
nmDocumentEntry.setIndexNames(
    (0, "NETMANAGER-MIB", "nmDocumentTopology"),
    (0, "NETMANAGER-MIB", "nmDocumentChunk"),
)
if mibBuilder.loadTexts:
    nmDocumentEntry.setStatus("current")
_NmDocumentTopology_Type = NmName
_NmDocumentTopology_Object = MibTableColumn
nmDocumentTopology = _NmDocumentTopology_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 7, 1, 1),
    _NmDocumentTopology_Type()
)
nmDocumentTopology.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmDocumentTopology.setStatus("current")


class _NmDocumentChunk_Type(Unsigned32):
    """Custom type nmDocumentChunk based on Unsigned32"""
    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(1, 4096),
    )


_NmDocumentChunk_Type.__name__ = "Unsigned32"
_NmDocumentChunk_Object = MibTableColumn
nmDocumentChunk = _NmDocumentChunk_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 7, 1, 2),
    _NmDocumentChunk_Type()
)
nmDocumentChunk.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmDocumentChunk.setStatus("current")


class _NmDocumentData_Type(DisplayString):
    """Custom type nmDocumentData based on DisplayString"""
    subtypeSpec = DisplayString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(1, 255),
    )


_NmDocumentData_Type.__name__ = "DisplayString"
_NmDocumentData_Object = MibTableColumn
nmDocumentData = _NmDocumentData_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 7, 1, 3),
    _NmDocumentData_Type()
)
nmDocumentData.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmDocumentData.setStatus("current")
_NmDocumentRowStatus_Type = RowStatus
_NmDocumentRowStatus_Object = MibTableColumn
nmDocumentRowStatus = _NmDocumentRowStatus_Object(
    (1, 3, 6, 1, 3, 7171, 1, 1, 7, 1, 4),
    _NmDocumentRowStatus_Type()
)
nmDocumentRowStatus.setMaxAccess("read-create")
if mibBuilder.loadTexts:
    nmDocumentRowStatus.setStatus("current")
_NmTxn_ObjectIdentity = ObjectIdentity
nmTxn = _NmTxn_ObjectIdentity(
    (1, 3, 6, 1, 3, 7171, 1, 2)
)


class _NmTxnOperation_Type(Integer32):
    """Custom type nmTxnOperation based on Integer32"""
    subtypeSpec = Integer32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        SingleValueConstraint(
            *(1,
              2,
              3,
              4,
              5,
              6)
        )
    )
    namedValues = NamedValues(
        *(("none", 1),
          ("stage", 2),
          ("commit", 3),
          ("confirm", 4),
          ("rollback", 5),
          ("discard", 6))
    )


_NmTxnOperation_Type.__name__ = "Integer32"
_NmTxnOperation_Object = MibScalar
nmTxnOperation = _NmTxnOperation_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 1),
    _NmTxnOperation_Type()
)
nmTxnOperation.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmTxnOperation.setStatus("current")


class _NmTxnRevertTimeout_Type(Unsigned32):
    """Custom type nmTxnRevertTimeout based on Unsigned32"""
    defaultValue = 0

    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(0, 86400),
    )


_NmTxnRevertTimeout_Type.__name__ = "Unsigned32"
_NmTxnRevertTimeout_Object = MibScalar
nmTxnRevertTimeout = _NmTxnRevertTimeout_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 2),
    _NmTxnRevertTimeout_Type()
)
nmTxnRevertTimeout.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmTxnRevertTimeout.setStatus("current")
if mibBuilder.loadTexts:
    nmTxnRevertTimeout.setUnits("seconds")


class _NmTxnState_Type(Integer32):
    """Custom type nmTxnState based on Integer32"""
    subtypeSpec = Integer32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        SingleValueConstraint(
            *(1,
              2,
              3,
              4,
              5,
              6,
              7)
        )
    )
    namedValues = NamedValues(
        *(("idle", 1),
          ("staging", 2),
          ("staged", 3),
          ("committing", 4),
          ("pendingConfirm", 5),
          ("rollingBack", 6),
          ("failed", 7))
    )


_NmTxnState_Type.__name__ = "Integer32"
_NmTxnState_Object = MibScalar
nmTxnState = _NmTxnState_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 3),
    _NmTxnState_Type()
)
nmTxnState.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmTxnState.setStatus("current")
_NmTxnRevertRemaining_Type = Unsigned32
_NmTxnRevertRemaining_Object = MibScalar
nmTxnRevertRemaining = _NmTxnRevertRemaining_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 4),
    _NmTxnRevertRemaining_Type()
)
nmTxnRevertRemaining.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmTxnRevertRemaining.setStatus("current")
if mibBuilder.loadTexts:
    nmTxnRevertRemaining.setUnits("seconds")


class _NmTxnLastResult_Type(Integer32):
    """Custom type nmTxnLastResult based on Integer32"""
    subtypeSpec = Integer32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        SingleValueConstraint(
            *(1,
              2,
              3,
              4)
        )
    )
    namedValues = NamedValues(
        *(("none", 1),
          ("success", 2),
          ("failed", 3),
          ("reverted", 4))
    )


_NmTxnLastResult_Type.__name__ = "Integer32"
_NmTxnLastResult_Object = MibScalar
nmTxnLastResult = _NmTxnLastResult_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 5),
    _NmTxnLastResult_Type()
)
nmTxnLastResult.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmTxnLastResult.setStatus("current")


class _NmTxnLastError_Type(DisplayString):
    """Custom type nmTxnLastError based on DisplayString"""
    subtypeSpec = DisplayString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 255),
    )


_NmTxnLastError_Type.__name__ = "DisplayString"
_NmTxnLastError_Object = MibScalar
nmTxnLastError = _NmTxnLastError_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 6),
    _NmTxnLastError_Type()
)
nmTxnLastError.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmTxnLastError.setStatus("current")
_NmTxnCandidateVersion_Type = Unsigned32
_NmTxnCandidateVersion_Object = MibScalar
nmTxnCandidateVersion = _NmTxnCandidateVersion_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 7),
    _NmTxnCandidateVersion_Type()
)
nmTxnCandidateVersion.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmTxnCandidateVersion.setStatus("current")
_NmTxnRunningVersion_Type = Unsigned32
_NmTxnRunningVersion_Object = MibScalar
nmTxnRunningVersion = _NmTxnRunningVersion_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 8),
    _NmTxnRunningVersion_Type()
)
nmTxnRunningVersion.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmTxnRunningVersion.setStatus("current")
_NmTxnChanges_Type = Gauge32
_NmTxnChanges_Object = MibScalar
nmTxnChanges = _NmTxnChanges_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 9),
    _NmTxnChanges_Type()
)
nmTxnChanges.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmTxnChanges.setStatus("current")
_NmTxnCommits_Type = Counter32
_NmTxnCommits_Object = MibScalar
nmTxnCommits = _NmTxnCommits_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 10),
    _NmTxnCommits_Type()
)
nmTxnCommits.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmTxnCommits.setStatus("current")
_NmTxnRollbacks_Type = Counter32
_NmTxnRollbacks_Object = MibScalar
nmTxnRollbacks = _NmTxnRollbacks_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 11),
    _NmTxnRollbacks_Type()
)
nmTxnRollbacks.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmTxnRollbacks.setStatus("current")
_NmChangeTable_Object = MibTable
nmChangeTable = _NmChangeTable_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 12)
)
if mibBuilder.loadTexts:
    nmChangeTable.setStatus("current")
_NmChangeEntry_Object = MibTableRow
nmChangeEntry = _NmChangeEntry_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 12, 1)
)
nmChangeEntry.setIndexNames(
    (0, "NETMANAGER-MIB", "nmChangeIndex"),
)
if mibBuilder.loadTexts:
    nmChangeEntry.setStatus("current")


class _NmChangeIndex_Type(Unsigned32):
    """Custom type nmChangeIndex based on Unsigned32"""
    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(1, 4294967295),
    )


_NmChangeIndex_Type.__name__ = "Unsigned32"
_NmChangeIndex_Object = MibTableColumn
nmChangeIndex = _NmChangeIndex_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 12, 1, 1),
    _NmChangeIndex_Type()
)
nmChangeIndex.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmChangeIndex.setStatus("current")


class _NmChangeAction_Type(Integer32):
    """Custom type nmChangeAction based on Integer32"""
    subtypeSpec = Integer32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        SingleValueConstraint(
            *(1,
              2,
              3)
        )
    )
    namedValues = NamedValues(
        *(("add", 1),
          ("modify", 2),
          ("remove", 3))
    )


_NmChangeAction_Type.__name__ = "Integer32"
_NmChangeAction_Object = MibTableColumn
nmChangeAction = _NmChangeAction_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 12, 1, 2),
    _NmChangeAction_Type()
)
nmChangeAction.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmChangeAction.setStatus("current")


class _NmChangeObject_Type(DisplayString):
    """Custom type nmChangeObject based on DisplayString"""
    subtypeSpec = DisplayString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 255),
    )


_NmChangeObject_Type.__name__ = "DisplayString"
_NmChangeObject_Object = MibTableColumn
nmChangeObject = _NmChangeObject_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 12, 1, 3),
    _NmChangeObject_Type()
)
nmChangeObject.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmChangeObject.setStatus("current")


class _NmChangeReason_Type(DisplayString):
    """Custom type nmChangeReason based on DisplayString"""
    subtypeSpec = DisplayString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 255),
    )


_NmChangeReason_Type.__name__ = "DisplayString"
_NmChangeReason_Object = MibTableColumn
nmChangeReason = _NmChangeReason_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 12, 1, 4),
    _NmChangeReason_Type()
)
nmChangeReason.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmChangeReason.setStatus("current")
_NmTxnStepsDone_Type = Unsigned32
_NmTxnStepsDone_Object = MibScalar
nmTxnStepsDone = _NmTxnStepsDone_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 13),
    _NmTxnStepsDone_Type()
)
nmTxnStepsDone.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmTxnStepsDone.setStatus("current")
if mibBuilder.loadTexts:
    nmTxnStepsDone.setUnits("steps")
_NmTxnStepsTotal_Type = Unsigned32
_NmTxnStepsTotal_Object = MibScalar
nmTxnStepsTotal = _NmTxnStepsTotal_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 14),
    _NmTxnStepsTotal_Type()
)
nmTxnStepsTotal.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmTxnStepsTotal.setStatus("current")
if mibBuilder.loadTexts:
    nmTxnStepsTotal.setUnits("steps")


class _NmTxnScope_Type(OctetString):
    """Custom type nmTxnScope based on OctetString"""
    defaultHexValue = ""

    subtypeSpec = OctetString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 16384),
    )


_NmTxnScope_Type.__name__ = "OctetString"
_NmTxnScope_Object = MibScalar
nmTxnScope = _NmTxnScope_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 15),
    _NmTxnScope_Type()
)
nmTxnScope.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmTxnScope.setStatus("current")


class _NmTxnSettledState_Type(Integer32):
    """Custom type nmTxnSettledState based on Integer32"""
    subtypeSpec = Integer32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        SingleValueConstraint(
            *(1,
              2,
              3,
              4,
              5,
              6,
              7)
        )
    )
    namedValues = NamedValues(
        *(("idle", 1),
          ("staging", 2),
          ("staged", 3),
          ("committing", 4),
          ("pendingConfirm", 5),
          ("rollingBack", 6),
          ("failed", 7))
    )


_NmTxnSettledState_Type.__name__ = "Integer32"
_NmTxnSettledState_Object = MibScalar
nmTxnSettledState = _NmTxnSettledState_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 16),
    _NmTxnSettledState_Type()
)
nmTxnSettledState.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmTxnSettledState.setStatus("current")


class _NmTxnHandOver_Type(DisplayString):
    """Custom type nmTxnHandOver based on DisplayString"""
    subtypeSpec = DisplayString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 255),
    )


_NmTxnHandOver_Type.__name__ = "DisplayString"
_NmTxnHandOver_Object = MibScalar
nmTxnHandOver = _NmTxnHandOver_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 17),
    _NmTxnHandOver_Type()
)
nmTxnHandOver.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmTxnHandOver.setStatus("current")


class _NmTxnAdopt_Type(DisplayString):
    """Custom type nmTxnAdopt based on DisplayString"""
    defaultHexValue = ""

    subtypeSpec = DisplayString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 255),
    )


_NmTxnAdopt_Type.__name__ = "DisplayString"
_NmTxnAdopt_Object = MibScalar
nmTxnAdopt = _NmTxnAdopt_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 18),
    _NmTxnAdopt_Type()
)
nmTxnAdopt.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmTxnAdopt.setStatus("current")


class _NmTxnMigrate_Type(OctetString):
    """Custom type nmTxnMigrate based on OctetString"""
    defaultHexValue = ""

    subtypeSpec = OctetString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 2048),
    )


_NmTxnMigrate_Type.__name__ = "OctetString"
_NmTxnMigrate_Object = MibScalar
nmTxnMigrate = _NmTxnMigrate_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 19),
    _NmTxnMigrate_Type()
)
nmTxnMigrate.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmTxnMigrate.setStatus("current")


class _NmTxnMigrateState_Type(OctetString):
    """Custom type nmTxnMigrateState based on OctetString"""
    subtypeSpec = OctetString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 1024),
    )


_NmTxnMigrateState_Type.__name__ = "OctetString"
_NmTxnMigrateState_Object = MibScalar
nmTxnMigrateState = _NmTxnMigrateState_Object(
    (1, 3, 6, 1, 3, 7171, 1, 2, 20),
    _NmTxnMigrateState_Type()
)
nmTxnMigrateState.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmTxnMigrateState.setStatus("current")
_NmMonitor_ObjectIdentity = ObjectIdentity
nmMonitor = _NmMonitor_ObjectIdentity(
    (1, 3, 6, 1, 3, 7171, 1, 3)
)
_NmLinkTable_Object = MibTable
nmLinkTable = _NmLinkTable_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1)
)
if mibBuilder.loadTexts:
    nmLinkTable.setStatus("current")
_NmLinkEntry_Object = MibTableRow
nmLinkEntry = _NmLinkEntry_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1)
)
nmLinkEntry.setIndexNames(
    (0, "IF-MIB", "ifIndex"),
)
if mibBuilder.loadTexts:
    nmLinkEntry.setStatus("current")
_NmLinkVm_Type = NmOptionalName
_NmLinkVm_Object = MibTableColumn
nmLinkVm = _NmLinkVm_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 1),
    _NmLinkVm_Type()
)
nmLinkVm.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmLinkVm.setStatus("current")
_NmLinkNetwork_Type = NmOptionalName
_NmLinkNetwork_Object = MibTableColumn
nmLinkNetwork = _NmLinkNetwork_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 2),
    _NmLinkNetwork_Type()
)
nmLinkNetwork.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmLinkNetwork.setStatus("current")


class _NmLinkNamespace_Type(DisplayString):
    """Custom type nmLinkNamespace based on DisplayString"""
    subtypeSpec = DisplayString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 255),
    )


_NmLinkNamespace_Type.__name__ = "DisplayString"
_NmLinkNamespace_Object = MibTableColumn
nmLinkNamespace = _NmLinkNamespace_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 3),
    _NmLinkNamespace_Type()
)
nmLinkNamespace.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmLinkNamespace.setStatus("current")
_NmLinkRate_Type = Unsigned32
_NmLinkRate_Object = MibTableColumn
nmLinkRate = _NmLinkRate_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 4),
    _NmLinkRate_Type()
)
nmLinkRate.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmLinkRate.setStatus("current")
if mibBuilder.loadTexts:
    nmLinkRate.setUnits("kbit/s")
_NmLinkDelay_Type = Unsigned32
_NmLinkDelay_Object = MibTableColumn
nmLinkDelay = _NmLinkDelay_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 5),
    _NmLinkDelay_Type()
)
nmLinkDelay.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmLinkDelay.setStatus("current")
if mibBuilder.loadTexts:
    nmLinkDelay.setUnits("microseconds")
_NmLinkJitter_Type = Unsigned32
_NmLinkJitter_Object = MibTableColumn
nmLinkJitter = _NmLinkJitter_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 6),
    _NmLinkJitter_Type()
)
nmLinkJitter.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmLinkJitter.setStatus("current")
if mibBuilder.loadTexts:
    nmLinkJitter.setUnits("microseconds")
_NmLinkLoss_Type = Unsigned32
_NmLinkLoss_Object = MibTableColumn
nmLinkLoss = _NmLinkLoss_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 7),
    _NmLinkLoss_Type()
)
nmLinkLoss.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmLinkLoss.setStatus("current")
if mibBuilder.loadTexts:
    nmLinkLoss.setUnits("parts per million")
_NmLinkOperStatus_Type = NmOperStatus
_NmLinkOperStatus_Object = MibTableColumn
nmLinkOperStatus = _NmLinkOperStatus_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 8),
    _NmLinkOperStatus_Type()
)
nmLinkOperStatus.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmLinkOperStatus.setStatus("current")
_NmLinkInOctets_Type = Counter64
_NmLinkInOctets_Object = MibTableColumn
nmLinkInOctets = _NmLinkInOctets_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 9),
    _NmLinkInOctets_Type()
)
nmLinkInOctets.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmLinkInOctets.setStatus("current")
if mibBuilder.loadTexts:
    nmLinkInOctets.setUnits("octets")
_NmLinkOutOctets_Type = Counter64
_NmLinkOutOctets_Object = MibTableColumn
nmLinkOutOctets = _NmLinkOutOctets_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 10),
    _NmLinkOutOctets_Type()
)
nmLinkOutOctets.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmLinkOutOctets.setStatus("current")
if mibBuilder.loadTexts:
    nmLinkOutOctets.setUnits("octets")
_NmLinkInPackets_Type = Counter64
_NmLinkInPackets_Object = MibTableColumn
nmLinkInPackets = _NmLinkInPackets_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 11),
    _NmLinkInPackets_Type()
)
nmLinkInPackets.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmLinkInPackets.setStatus("current")
if mibBuilder.loadTexts:
    nmLinkInPackets.setUnits("packets")
_NmLinkOutPackets_Type = Counter64
_NmLinkOutPackets_Object = MibTableColumn
nmLinkOutPackets = _NmLinkOutPackets_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 12),
    _NmLinkOutPackets_Type()
)
nmLinkOutPackets.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmLinkOutPackets.setStatus("current")
if mibBuilder.loadTexts:
    nmLinkOutPackets.setUnits("packets")
_NmLinkInDrops_Type = Counter64
_NmLinkInDrops_Object = MibTableColumn
nmLinkInDrops = _NmLinkInDrops_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 13),
    _NmLinkInDrops_Type()
)
nmLinkInDrops.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmLinkInDrops.setStatus("current")
if mibBuilder.loadTexts:
    nmLinkInDrops.setUnits("packets")
_NmLinkOutDrops_Type = Counter64
_NmLinkOutDrops_Object = MibTableColumn
nmLinkOutDrops = _NmLinkOutDrops_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 14),
    _NmLinkOutDrops_Type()
)
nmLinkOutDrops.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmLinkOutDrops.setStatus("current")
if mibBuilder.loadTexts:
    nmLinkOutDrops.setUnits("packets")
_NmLinkLastPoll_Type = TimeStamp
_NmLinkLastPoll_Object = MibTableColumn
nmLinkLastPoll = _NmLinkLastPoll_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 15),
    _NmLinkLastPoll_Type()
)
nmLinkLastPoll.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmLinkLastPoll.setStatus("current")


class _NmLinkGuestAddress_Type(Integer32):
    """Custom type nmLinkGuestAddress based on Integer32"""
    subtypeSpec = Integer32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        SingleValueConstraint(
            *(1,
              2,
              3,
              4)
        )
    )
    namedValues = NamedValues(
        *(("unknown", 1),
          ("configured", 2),
          ("answering", 3),
          ("silent", 4))
    )


_NmLinkGuestAddress_Type.__name__ = "Integer32"
_NmLinkGuestAddress_Object = MibTableColumn
nmLinkGuestAddress = _NmLinkGuestAddress_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 16),
    _NmLinkGuestAddress_Type()
)
nmLinkGuestAddress.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmLinkGuestAddress.setStatus("current")


class _NmLinkOverrides_Type(DisplayString):
    """Custom type nmLinkOverrides based on DisplayString"""
    subtypeSpec = DisplayString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 64),
    )


_NmLinkOverrides_Type.__name__ = "DisplayString"
_NmLinkOverrides_Object = MibTableColumn
nmLinkOverrides = _NmLinkOverrides_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 17),
    _NmLinkOverrides_Type()
)
nmLinkOverrides.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmLinkOverrides.setStatus("current")
_NmLinkRateFromVm_Type = Unsigned32
_NmLinkRateFromVm_Object = MibTableColumn
nmLinkRateFromVm = _NmLinkRateFromVm_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1, 18),
    _NmLinkRateFromVm_Type()
)
nmLinkRateFromVm.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmLinkRateFromVm.setStatus("current")
if mibBuilder.loadTexts:
    nmLinkRateFromVm.setUnits("kbit/s")
_NmMonitorPollInterval_Type = Unsigned32
_NmMonitorPollInterval_Object = MibScalar
nmMonitorPollInterval = _NmMonitorPollInterval_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 2),
    _NmMonitorPollInterval_Type()
)
nmMonitorPollInterval.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmMonitorPollInterval.setStatus("current")
if mibBuilder.loadTexts:
    nmMonitorPollInterval.setUnits("milliseconds")
_NmMonitorPollDuration_Type = Gauge32
_NmMonitorPollDuration_Object = MibScalar
nmMonitorPollDuration = _NmMonitorPollDuration_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 3),
    _NmMonitorPollDuration_Type()
)
nmMonitorPollDuration.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmMonitorPollDuration.setStatus("current")
if mibBuilder.loadTexts:
    nmMonitorPollDuration.setUnits("milliseconds")
_NmMonitorPollCpu_Type = Gauge32
_NmMonitorPollCpu_Object = MibScalar
nmMonitorPollCpu = _NmMonitorPollCpu_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 4),
    _NmMonitorPollCpu_Type()
)
nmMonitorPollCpu.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmMonitorPollCpu.setStatus("current")
if mibBuilder.loadTexts:
    nmMonitorPollCpu.setUnits("milliseconds")
_NmLinkNameTable_Object = MibTable
nmLinkNameTable = _NmLinkNameTable_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 5)
)
if mibBuilder.loadTexts:
    nmLinkNameTable.setStatus("current")
_NmLinkNameEntry_Object = MibTableRow
nmLinkNameEntry = _NmLinkNameEntry_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 5, 1)
)
nmLinkNameEntry.setIndexNames(
    (0, "NETMANAGER-MIB", "nmLinkNameVm"),
    (0, "NETMANAGER-MIB", "nmLinkNameNetwork"),
)
if mibBuilder.loadTexts:
    nmLinkNameEntry.setStatus("current")


class _NmLinkNameVm_Type(OctetString):
    """Custom type nmLinkNameVm based on OctetString"""
    subtypeSpec = OctetString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(1, 32),
    )


_NmLinkNameVm_Type.__name__ = "OctetString"
_NmLinkNameVm_Object = MibTableColumn
nmLinkNameVm = _NmLinkNameVm_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 5, 1, 1),
    _NmLinkNameVm_Type()
)
nmLinkNameVm.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmLinkNameVm.setStatus("current")


class _NmLinkNameNetwork_Type(OctetString):
    """Custom type nmLinkNameNetwork based on OctetString"""
    subtypeSpec = OctetString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(1, 32),
    )


_NmLinkNameNetwork_Type.__name__ = "OctetString"
_NmLinkNameNetwork_Object = MibTableColumn
nmLinkNameNetwork = _NmLinkNameNetwork_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 5, 1, 2),
    _NmLinkNameNetwork_Type()
)
nmLinkNameNetwork.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmLinkNameNetwork.setStatus("current")
_NmLinkNameIfIndex_Type = InterfaceIndex
_NmLinkNameIfIndex_Object = MibTableColumn
nmLinkNameIfIndex = _NmLinkNameIfIndex_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 5, 1, 3),
    _NmLinkNameIfIndex_Type()
)
nmLinkNameIfIndex.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmLinkNameIfIndex.setStatus("current")
_NmMonitorOverrides_Type = Gauge32
_NmMonitorOverrides_Object = MibScalar
nmMonitorOverrides = _NmMonitorOverrides_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 6),
    _NmMonitorOverrides_Type()
)
nmMonitorOverrides.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmMonitorOverrides.setStatus("current")
if mibBuilder.loadTexts:
    nmMonitorOverrides.setUnits("ports")
_NmPairTable_Object = MibTable
nmPairTable = _NmPairTable_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 7)
)
if mibBuilder.loadTexts:
    nmPairTable.setStatus("current")
_NmPairEntry_Object = MibTableRow
nmPairEntry = _NmPairEntry_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 7, 1)
)
nmPairEntry.setIndexNames(
    (0, "IF-MIB", "ifIndex"),
    (0, "NETMANAGER-MIB", "nmPairPeer"),
)
if mibBuilder.loadTexts:
    nmPairEntry.setStatus("current")


class _NmPairPeer_Type(OctetString):
    """Custom type nmPairPeer based on OctetString"""
    subtypeSpec = OctetString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(1, 32),
    )


_NmPairPeer_Type.__name__ = "OctetString"
_NmPairPeer_Object = MibTableColumn
nmPairPeer = _NmPairPeer_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 7, 1, 1),
    _NmPairPeer_Type()
)
nmPairPeer.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmPairPeer.setStatus("current")
_NmPairRate_Type = Unsigned32
_NmPairRate_Object = MibTableColumn
nmPairRate = _NmPairRate_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 7, 1, 2),
    _NmPairRate_Type()
)
nmPairRate.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmPairRate.setStatus("current")
if mibBuilder.loadTexts:
    nmPairRate.setUnits("kbit/s")
_NmPairDelay_Type = Unsigned32
_NmPairDelay_Object = MibTableColumn
nmPairDelay = _NmPairDelay_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 7, 1, 3),
    _NmPairDelay_Type()
)
nmPairDelay.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmPairDelay.setStatus("current")
if mibBuilder.loadTexts:
    nmPairDelay.setUnits("microseconds")
_NmPairJitter_Type = Unsigned32
_NmPairJitter_Object = MibTableColumn
nmPairJitter = _NmPairJitter_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 7, 1, 4),
    _NmPairJitter_Type()
)
nmPairJitter.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmPairJitter.setStatus("current")
if mibBuilder.loadTexts:
    nmPairJitter.setUnits("microseconds")
_NmPairLoss_Type = Unsigned32
_NmPairLoss_Object = MibTableColumn
nmPairLoss = _NmPairLoss_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 7, 1, 5),
    _NmPairLoss_Type()
)
nmPairLoss.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmPairLoss.setStatus("current")
if mibBuilder.loadTexts:
    nmPairLoss.setUnits("parts per million")


class _NmPairOverrides_Type(DisplayString):
    """Custom type nmPairOverrides based on DisplayString"""
    subtypeSpec = DisplayString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 64),
    )


_NmPairOverrides_Type.__name__ = "DisplayString"
_NmPairOverrides_Object = MibTableColumn
nmPairOverrides = _NmPairOverrides_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 7, 1, 6),
    _NmPairOverrides_Type()
)
nmPairOverrides.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmPairOverrides.setStatus("current")
_NmPairRateFromVm_Type = Unsigned32
_NmPairRateFromVm_Object = MibTableColumn
nmPairRateFromVm = _NmPairRateFromVm_Object(
    (1, 3, 6, 1, 3, 7171, 1, 3, 7, 1, 7),
    _NmPairRateFromVm_Type()
)
nmPairRateFromVm.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmPairRateFromVm.setStatus("current")
if mibBuilder.loadTexts:
    nmPairRateFromVm.setUnits("kbit/s")
_NmSchedule_ObjectIdentity = ObjectIdentity
nmSchedule = _NmSchedule_ObjectIdentity(
    (1, 3, 6, 1, 3, 7171, 1, 4)
)
_NmScheduleChunkTable_Object = MibTable
nmScheduleChunkTable = _NmScheduleChunkTable_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 1)
)
if mibBuilder.loadTexts:
    nmScheduleChunkTable.setStatus("current")
_NmScheduleChunkEntry_Object = MibTableRow
nmScheduleChunkEntry = _NmScheduleChunkEntry_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 1, 1)
)
nmScheduleChunkEntry.setIndexNames(
    (0, "NETMANAGER-MIB", "nmScheduleChunkIndex"),
)
if mibBuilder.loadTexts:
    nmScheduleChunkEntry.setStatus("current")


class _NmScheduleChunkIndex_Type(Unsigned32):
    """Custom type nmScheduleChunkIndex based on Unsigned32"""
    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(1, 100000),
    )


_NmScheduleChunkIndex_Type.__name__ = "Unsigned32"
_NmScheduleChunkIndex_Object = MibTableColumn
nmScheduleChunkIndex = _NmScheduleChunkIndex_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 1, 1, 1),
    _NmScheduleChunkIndex_Type()
)
nmScheduleChunkIndex.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmScheduleChunkIndex.setStatus("current")


class _NmScheduleChunkData_Type(OctetString):
    """Custom type nmScheduleChunkData based on OctetString"""
    subtypeSpec = OctetString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 1024),
    )


_NmScheduleChunkData_Type.__name__ = "OctetString"
_NmScheduleChunkData_Object = MibTableColumn
nmScheduleChunkData = _NmScheduleChunkData_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 1, 1, 2),
    _NmScheduleChunkData_Type()
)
nmScheduleChunkData.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmScheduleChunkData.setStatus("current")


class _NmScheduleOperation_Type(Integer32):
    """Custom type nmScheduleOperation based on Integer32"""
    subtypeSpec = Integer32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        SingleValueConstraint(
            *(1,
              2,
              3,
              4)
        )
    )
    namedValues = NamedValues(
        *(("none", 1),
          ("load", 2),
          ("start", 3),
          ("stop", 4))
    )


_NmScheduleOperation_Type.__name__ = "Integer32"
_NmScheduleOperation_Object = MibScalar
nmScheduleOperation = _NmScheduleOperation_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 2),
    _NmScheduleOperation_Type()
)
nmScheduleOperation.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmScheduleOperation.setStatus("current")
_NmScheduleStartDelay_Type = Unsigned32
_NmScheduleStartDelay_Object = MibScalar
nmScheduleStartDelay = _NmScheduleStartDelay_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 3),
    _NmScheduleStartDelay_Type()
)
nmScheduleStartDelay.setMaxAccess("read-write")
if mibBuilder.loadTexts:
    nmScheduleStartDelay.setStatus("current")
if mibBuilder.loadTexts:
    nmScheduleStartDelay.setUnits("milliseconds")


class _NmScheduleState_Type(Integer32):
    """Custom type nmScheduleState based on Integer32"""
    subtypeSpec = Integer32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        SingleValueConstraint(
            *(1,
              2,
              3,
              4,
              5,
              6,
              7)
        )
    )
    namedValues = NamedValues(
        *(("empty", 1),
          ("loaded", 2),
          ("armed", 3),
          ("running", 4),
          ("finished", 5),
          ("stopped", 6),
          ("failed", 7))
    )


_NmScheduleState_Type.__name__ = "Integer32"
_NmScheduleState_Object = MibScalar
nmScheduleState = _NmScheduleState_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 4),
    _NmScheduleState_Type()
)
nmScheduleState.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmScheduleState.setStatus("current")


class _NmScheduleTopology_Type(DisplayString):
    """Custom type nmScheduleTopology based on DisplayString"""
    subtypeSpec = DisplayString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 32),
    )


_NmScheduleTopology_Type.__name__ = "DisplayString"
_NmScheduleTopology_Object = MibScalar
nmScheduleTopology = _NmScheduleTopology_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 5),
    _NmScheduleTopology_Type()
)
nmScheduleTopology.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmScheduleTopology.setStatus("current")
_NmScheduleSteps_Type = Gauge32
_NmScheduleSteps_Object = MibScalar
nmScheduleSteps = _NmScheduleSteps_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 6),
    _NmScheduleSteps_Type()
)
nmScheduleSteps.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmScheduleSteps.setStatus("current")
_NmScheduleDone_Type = Gauge32
_NmScheduleDone_Object = MibScalar
nmScheduleDone = _NmScheduleDone_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 7),
    _NmScheduleDone_Type()
)
nmScheduleDone.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmScheduleDone.setStatus("current")
_NmScheduleElapsed_Type = Integer32
_NmScheduleElapsed_Object = MibScalar
nmScheduleElapsed = _NmScheduleElapsed_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 8),
    _NmScheduleElapsed_Type()
)
nmScheduleElapsed.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmScheduleElapsed.setStatus("current")
if mibBuilder.loadTexts:
    nmScheduleElapsed.setUnits("milliseconds")
_NmScheduleNext_Type = Integer32
_NmScheduleNext_Object = MibScalar
nmScheduleNext = _NmScheduleNext_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 9),
    _NmScheduleNext_Type()
)
nmScheduleNext.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmScheduleNext.setStatus("current")
if mibBuilder.loadTexts:
    nmScheduleNext.setUnits("milliseconds")
_NmScheduleLateMax_Type = Gauge32
_NmScheduleLateMax_Object = MibScalar
nmScheduleLateMax = _NmScheduleLateMax_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 10),
    _NmScheduleLateMax_Type()
)
nmScheduleLateMax.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmScheduleLateMax.setStatus("current")
if mibBuilder.loadTexts:
    nmScheduleLateMax.setUnits("microseconds")


class _NmScheduleLastError_Type(DisplayString):
    """Custom type nmScheduleLastError based on DisplayString"""
    subtypeSpec = DisplayString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 255),
    )


_NmScheduleLastError_Type.__name__ = "DisplayString"
_NmScheduleLastError_Object = MibScalar
nmScheduleLastError = _NmScheduleLastError_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 11),
    _NmScheduleLastError_Type()
)
nmScheduleLastError.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmScheduleLastError.setStatus("current")


class _NmScheduleLog_Type(DisplayString):
    """Custom type nmScheduleLog based on DisplayString"""
    subtypeSpec = DisplayString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 255),
    )


_NmScheduleLog_Type.__name__ = "DisplayString"
_NmScheduleLog_Object = MibScalar
nmScheduleLog = _NmScheduleLog_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 12),
    _NmScheduleLog_Type()
)
nmScheduleLog.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmScheduleLog.setStatus("current")
_NmScheduleRecentTable_Object = MibTable
nmScheduleRecentTable = _NmScheduleRecentTable_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 13)
)
if mibBuilder.loadTexts:
    nmScheduleRecentTable.setStatus("current")
_NmScheduleRecentEntry_Object = MibTableRow
nmScheduleRecentEntry = _NmScheduleRecentEntry_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 13, 1)
)
nmScheduleRecentEntry.setIndexNames(
    (0, "NETMANAGER-MIB", "nmScheduleRecentIndex"),
)
if mibBuilder.loadTexts:
    nmScheduleRecentEntry.setStatus("current")


class _NmScheduleRecentIndex_Type(Unsigned32):
    """Custom type nmScheduleRecentIndex based on Unsigned32"""
    subtypeSpec = Unsigned32.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueRangeConstraint(1, 20),
    )


_NmScheduleRecentIndex_Type.__name__ = "Unsigned32"
_NmScheduleRecentIndex_Object = MibTableColumn
nmScheduleRecentIndex = _NmScheduleRecentIndex_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 13, 1, 1),
    _NmScheduleRecentIndex_Type()
)
nmScheduleRecentIndex.setMaxAccess("not-accessible")
if mibBuilder.loadTexts:
    nmScheduleRecentIndex.setStatus("current")


class _NmScheduleRecentRow_Type(DisplayString):
    """Custom type nmScheduleRecentRow based on DisplayString"""
    subtypeSpec = DisplayString.subtypeSpec
    subtypeSpec += ConstraintsUnion(
        ValueSizeConstraint(0, 255),
    )


_NmScheduleRecentRow_Type.__name__ = "DisplayString"
_NmScheduleRecentRow_Object = MibTableColumn
nmScheduleRecentRow = _NmScheduleRecentRow_Object(
    (1, 3, 6, 1, 3, 7171, 1, 4, 13, 1, 2),
    _NmScheduleRecentRow_Type()
)
nmScheduleRecentRow.setMaxAccess("read-only")
if mibBuilder.loadTexts:
    nmScheduleRecentRow.setStatus("current")
_NmConformance_ObjectIdentity = ObjectIdentity
nmConformance = _NmConformance_ObjectIdentity(
    (1, 3, 6, 1, 3, 7171, 2)
)
_NmCompliances_ObjectIdentity = ObjectIdentity
nmCompliances = _NmCompliances_ObjectIdentity(
    (1, 3, 6, 1, 3, 7171, 2, 1)
)
_NmGroups_ObjectIdentity = ObjectIdentity
nmGroups = _NmGroups_ObjectIdentity(
    (1, 3, 6, 1, 3, 7171, 2, 2)
)

# Managed Objects groups

nmConfigGroup = ObjectGroup(
    (1, 3, 6, 1, 3, 7171, 2, 2, 1)
)
nmConfigGroup.setObjects(
      *(("NETMANAGER-MIB", "nmNetworkEncap"),
        ("NETMANAGER-MIB", "nmNetworkSegmentId"),
        ("NETMANAGER-MIB", "nmNetworkBridge"),
        ("NETMANAGER-MIB", "nmNetworkUnderlay"),
        ("NETMANAGER-MIB", "nmNetworkLocalAddress"),
        ("NETMANAGER-MIB", "nmNetworkAddress"),
        ("NETMANAGER-MIB", "nmNetworkPrefixLength"),
        ("NETMANAGER-MIB", "nmNetworkIsolated"),
        ("NETMANAGER-MIB", "nmNetworkRowStatus"),
        ("NETMANAGER-MIB", "nmPeerRowStatus"),
        ("NETMANAGER-MIB", "nmPortIfName"),
        ("NETMANAGER-MIB", "nmPortVmIfName"),
        ("NETMANAGER-MIB", "nmPortAddress"),
        ("NETMANAGER-MIB", "nmPortPrefixLength"),
        ("NETMANAGER-MIB", "nmPortMacAddress"),
        ("NETMANAGER-MIB", "nmPortAdminStatus"),
        ("NETMANAGER-MIB", "nmPortRowStatus"),
        ("NETMANAGER-MIB", "nmShapePeerAddress"),
        ("NETMANAGER-MIB", "nmShapeRate"),
        ("NETMANAGER-MIB", "nmShapeBurst"),
        ("NETMANAGER-MIB", "nmShapeDelay"),
        ("NETMANAGER-MIB", "nmShapeJitter"),
        ("NETMANAGER-MIB", "nmShapeLoss"),
        ("NETMANAGER-MIB", "nmShapeQueue"),
        ("NETMANAGER-MIB", "nmShapeRowStatus"),
        ("NETMANAGER-MIB", "nmRuleAction"),
        ("NETMANAGER-MIB", "nmRuleSource"),
        ("NETMANAGER-MIB", "nmRuleSourceAddress"),
        ("NETMANAGER-MIB", "nmRuleSourcePrefixLength"),
        ("NETMANAGER-MIB", "nmRuleDestination"),
        ("NETMANAGER-MIB", "nmRuleDestinationAddress"),
        ("NETMANAGER-MIB", "nmRuleDestinationPrefixLength"),
        ("NETMANAGER-MIB", "nmRuleProtocol"),
        ("NETMANAGER-MIB", "nmRulePortFirst"),
        ("NETMANAGER-MIB", "nmRulePortLast"),
        ("NETMANAGER-MIB", "nmRuleRowStatus"),
        ("NETMANAGER-MIB", "nmRouteNextHop"),
        ("NETMANAGER-MIB", "nmRouteRowStatus"),
        ("NETMANAGER-MIB", "nmDocumentData"),
        ("NETMANAGER-MIB", "nmDocumentRowStatus"))
)
if mibBuilder.loadTexts:
    nmConfigGroup.setStatus("current")

nmTxnGroup = ObjectGroup(
    (1, 3, 6, 1, 3, 7171, 2, 2, 2)
)
nmTxnGroup.setObjects(
      *(("NETMANAGER-MIB", "nmTxnOperation"),
        ("NETMANAGER-MIB", "nmTxnRevertTimeout"),
        ("NETMANAGER-MIB", "nmTxnState"),
        ("NETMANAGER-MIB", "nmTxnRevertRemaining"),
        ("NETMANAGER-MIB", "nmTxnLastResult"),
        ("NETMANAGER-MIB", "nmTxnLastError"),
        ("NETMANAGER-MIB", "nmTxnCandidateVersion"),
        ("NETMANAGER-MIB", "nmTxnRunningVersion"),
        ("NETMANAGER-MIB", "nmTxnChanges"),
        ("NETMANAGER-MIB", "nmTxnCommits"),
        ("NETMANAGER-MIB", "nmTxnRollbacks"),
        ("NETMANAGER-MIB", "nmTxnStepsDone"),
        ("NETMANAGER-MIB", "nmTxnStepsTotal"),
        ("NETMANAGER-MIB", "nmTxnScope"),
        ("NETMANAGER-MIB", "nmTxnSettledState"),
        ("NETMANAGER-MIB", "nmTxnHandOver"),
        ("NETMANAGER-MIB", "nmTxnAdopt"),
        ("NETMANAGER-MIB", "nmTxnMigrate"),
        ("NETMANAGER-MIB", "nmTxnMigrateState"),
        ("NETMANAGER-MIB", "nmChangeAction"),
        ("NETMANAGER-MIB", "nmChangeObject"),
        ("NETMANAGER-MIB", "nmChangeReason"))
)
if mibBuilder.loadTexts:
    nmTxnGroup.setStatus("current")

nmMonitorGroup = ObjectGroup(
    (1, 3, 6, 1, 3, 7171, 2, 2, 3)
)
nmMonitorGroup.setObjects(
      *(("NETMANAGER-MIB", "nmLinkVm"),
        ("NETMANAGER-MIB", "nmLinkNetwork"),
        ("NETMANAGER-MIB", "nmLinkNamespace"),
        ("NETMANAGER-MIB", "nmLinkRate"),
        ("NETMANAGER-MIB", "nmLinkDelay"),
        ("NETMANAGER-MIB", "nmLinkJitter"),
        ("NETMANAGER-MIB", "nmLinkLoss"),
        ("NETMANAGER-MIB", "nmLinkOperStatus"),
        ("NETMANAGER-MIB", "nmLinkInOctets"),
        ("NETMANAGER-MIB", "nmLinkOutOctets"),
        ("NETMANAGER-MIB", "nmLinkInPackets"),
        ("NETMANAGER-MIB", "nmLinkOutPackets"),
        ("NETMANAGER-MIB", "nmLinkInDrops"),
        ("NETMANAGER-MIB", "nmLinkOutDrops"),
        ("NETMANAGER-MIB", "nmLinkLastPoll"),
        ("NETMANAGER-MIB", "nmLinkGuestAddress"),
        ("NETMANAGER-MIB", "nmLinkOverrides"),
        ("NETMANAGER-MIB", "nmLinkRateFromVm"),
        ("NETMANAGER-MIB", "nmPairRateFromVm"),
        ("NETMANAGER-MIB", "nmLinkNameIfIndex"),
        ("NETMANAGER-MIB", "nmPairRate"),
        ("NETMANAGER-MIB", "nmPairDelay"),
        ("NETMANAGER-MIB", "nmPairJitter"),
        ("NETMANAGER-MIB", "nmPairLoss"),
        ("NETMANAGER-MIB", "nmPairOverrides"),
        ("NETMANAGER-MIB", "nmMonitorPollInterval"),
        ("NETMANAGER-MIB", "nmMonitorPollDuration"),
        ("NETMANAGER-MIB", "nmMonitorPollCpu"),
        ("NETMANAGER-MIB", "nmMonitorOverrides"))
)
if mibBuilder.loadTexts:
    nmMonitorGroup.setStatus("current")

nmScheduleGroup = ObjectGroup(
    (1, 3, 6, 1, 3, 7171, 2, 2, 5)
)
nmScheduleGroup.setObjects(
      *(("NETMANAGER-MIB", "nmScheduleChunkData"),
        ("NETMANAGER-MIB", "nmScheduleOperation"),
        ("NETMANAGER-MIB", "nmScheduleStartDelay"),
        ("NETMANAGER-MIB", "nmScheduleState"),
        ("NETMANAGER-MIB", "nmScheduleTopology"),
        ("NETMANAGER-MIB", "nmScheduleSteps"),
        ("NETMANAGER-MIB", "nmScheduleDone"),
        ("NETMANAGER-MIB", "nmScheduleElapsed"),
        ("NETMANAGER-MIB", "nmScheduleNext"),
        ("NETMANAGER-MIB", "nmScheduleLateMax"),
        ("NETMANAGER-MIB", "nmScheduleLastError"),
        ("NETMANAGER-MIB", "nmScheduleLog"),
        ("NETMANAGER-MIB", "nmScheduleRecentRow"))
)
if mibBuilder.loadTexts:
    nmScheduleGroup.setStatus("current")


# Notification objects

nmTxnReverted = NotificationType(
    (1, 3, 6, 1, 3, 7171, 0, 1)
)
nmTxnReverted.setObjects(
      *(("NETMANAGER-MIB", "nmTxnRunningVersion"),
        ("NETMANAGER-MIB", "nmTxnLastError"))
)
if mibBuilder.loadTexts:
    nmTxnReverted.setStatus(
        "current"
    )

nmTxnFailed = NotificationType(
    (1, 3, 6, 1, 3, 7171, 0, 2)
)
nmTxnFailed.setObjects(
      *(("NETMANAGER-MIB", "nmTxnState"),
        ("NETMANAGER-MIB", "nmTxnLastError"))
)
if mibBuilder.loadTexts:
    nmTxnFailed.setStatus(
        "current"
    )


# Notifications groups

nmNotificationGroup = NotificationGroup(
    (1, 3, 6, 1, 3, 7171, 2, 2, 4)
)
nmNotificationGroup.setObjects(
      *(("NETMANAGER-MIB", "nmTxnReverted"),
        ("NETMANAGER-MIB", "nmTxnFailed"))
)
if mibBuilder.loadTexts:
    nmNotificationGroup.setStatus(
        "current"
    )


# Agent capabilities


# Module compliance

nmAgentCompliance = ModuleCompliance(
    (1, 3, 6, 1, 3, 7171, 2, 1, 1)
)
nmAgentCompliance.setObjects(
      *(("NETMANAGER-MIB", "nmConfigGroup"),
        ("NETMANAGER-MIB", "nmTxnGroup"),
        ("NETMANAGER-MIB", "nmMonitorGroup"),
        ("NETMANAGER-MIB", "nmScheduleGroup"),
        ("NETMANAGER-MIB", "nmNotificationGroup"))
)
if mibBuilder.loadTexts:
    nmAgentCompliance.setStatus(
        "current"
    )


# Export all MIB objects to the MIB builder

mibBuilder.export_symbols(
    "NETMANAGER-MIB",
    **{"NmName": NmName,
       "NmOptionalName": NmOptionalName,
       "NmIfName": NmIfName,
       "NmOperStatus": NmOperStatus,
       "netmanagerMIB": netmanagerMIB,
       "nmNotifications": nmNotifications,
       "nmTxnReverted": nmTxnReverted,
       "nmTxnFailed": nmTxnFailed,
       "nmObjects": nmObjects,
       "nmConfig": nmConfig,
       "nmNetworkTable": nmNetworkTable,
       "nmNetworkEntry": nmNetworkEntry,
       "nmNetworkName": nmNetworkName,
       "nmNetworkEncap": nmNetworkEncap,
       "nmNetworkSegmentId": nmNetworkSegmentId,
       "nmNetworkBridge": nmNetworkBridge,
       "nmNetworkUnderlay": nmNetworkUnderlay,
       "nmNetworkLocalAddress": nmNetworkLocalAddress,
       "nmNetworkAddress": nmNetworkAddress,
       "nmNetworkPrefixLength": nmNetworkPrefixLength,
       "nmNetworkIsolated": nmNetworkIsolated,
       "nmNetworkRowStatus": nmNetworkRowStatus,
       "nmPeerTable": nmPeerTable,
       "nmPeerEntry": nmPeerEntry,
       "nmPeerAddress": nmPeerAddress,
       "nmPeerRowStatus": nmPeerRowStatus,
       "nmPortTable": nmPortTable,
       "nmPortEntry": nmPortEntry,
       "nmPortVm": nmPortVm,
       "nmPortNetwork": nmPortNetwork,
       "nmPortIfName": nmPortIfName,
       "nmPortVmIfName": nmPortVmIfName,
       "nmPortAddress": nmPortAddress,
       "nmPortPrefixLength": nmPortPrefixLength,
       "nmPortMacAddress": nmPortMacAddress,
       "nmPortAdminStatus": nmPortAdminStatus,
       "nmPortRowStatus": nmPortRowStatus,
       "nmShapeTable": nmShapeTable,
       "nmShapeEntry": nmShapeEntry,
       "nmShapeVm": nmShapeVm,
       "nmShapeNetwork": nmShapeNetwork,
       "nmShapePeer": nmShapePeer,
       "nmShapePeerAddress": nmShapePeerAddress,
       "nmShapeRate": nmShapeRate,
       "nmShapeBurst": nmShapeBurst,
       "nmShapeDelay": nmShapeDelay,
       "nmShapeJitter": nmShapeJitter,
       "nmShapeLoss": nmShapeLoss,
       "nmShapeQueue": nmShapeQueue,
       "nmShapeRowStatus": nmShapeRowStatus,
       "nmRuleTable": nmRuleTable,
       "nmRuleEntry": nmRuleEntry,
       "nmRuleIndex": nmRuleIndex,
       "nmRuleAction": nmRuleAction,
       "nmRuleSource": nmRuleSource,
       "nmRuleSourceAddress": nmRuleSourceAddress,
       "nmRuleSourcePrefixLength": nmRuleSourcePrefixLength,
       "nmRuleDestination": nmRuleDestination,
       "nmRuleDestinationAddress": nmRuleDestinationAddress,
       "nmRuleDestinationPrefixLength": nmRuleDestinationPrefixLength,
       "nmRuleProtocol": nmRuleProtocol,
       "nmRulePortFirst": nmRulePortFirst,
       "nmRulePortLast": nmRulePortLast,
       "nmRuleRowStatus": nmRuleRowStatus,
       "nmRouteTable": nmRouteTable,
       "nmRouteEntry": nmRouteEntry,
       "nmRouteVm": nmRouteVm,
       "nmRouteDestination": nmRouteDestination,
       "nmRoutePrefixLength": nmRoutePrefixLength,
       "nmRouteNextHop": nmRouteNextHop,
       "nmRouteRowStatus": nmRouteRowStatus,
       "nmDocumentTable": nmDocumentTable,
       "nmDocumentEntry": nmDocumentEntry,
       "nmDocumentTopology": nmDocumentTopology,
       "nmDocumentChunk": nmDocumentChunk,
       "nmDocumentData": nmDocumentData,
       "nmDocumentRowStatus": nmDocumentRowStatus,
       "nmTxn": nmTxn,
       "nmTxnOperation": nmTxnOperation,
       "nmTxnRevertTimeout": nmTxnRevertTimeout,
       "nmTxnState": nmTxnState,
       "nmTxnRevertRemaining": nmTxnRevertRemaining,
       "nmTxnLastResult": nmTxnLastResult,
       "nmTxnLastError": nmTxnLastError,
       "nmTxnCandidateVersion": nmTxnCandidateVersion,
       "nmTxnRunningVersion": nmTxnRunningVersion,
       "nmTxnChanges": nmTxnChanges,
       "nmTxnCommits": nmTxnCommits,
       "nmTxnRollbacks": nmTxnRollbacks,
       "nmChangeTable": nmChangeTable,
       "nmChangeEntry": nmChangeEntry,
       "nmChangeIndex": nmChangeIndex,
       "nmChangeAction": nmChangeAction,
       "nmChangeObject": nmChangeObject,
       "nmChangeReason": nmChangeReason,
       "nmTxnStepsDone": nmTxnStepsDone,
       "nmTxnStepsTotal": nmTxnStepsTotal,
       "nmTxnScope": nmTxnScope,
       "nmTxnSettledState": nmTxnSettledState,
       "nmTxnHandOver": nmTxnHandOver,
       "nmTxnAdopt": nmTxnAdopt,
       "nmTxnMigrate": nmTxnMigrate,
       "nmTxnMigrateState": nmTxnMigrateState,
       "nmMonitor": nmMonitor,
       "nmLinkTable": nmLinkTable,
       "nmLinkEntry": nmLinkEntry,
       "nmLinkVm": nmLinkVm,
       "nmLinkNetwork": nmLinkNetwork,
       "nmLinkNamespace": nmLinkNamespace,
       "nmLinkRate": nmLinkRate,
       "nmLinkDelay": nmLinkDelay,
       "nmLinkJitter": nmLinkJitter,
       "nmLinkLoss": nmLinkLoss,
       "nmLinkOperStatus": nmLinkOperStatus,
       "nmLinkInOctets": nmLinkInOctets,
       "nmLinkOutOctets": nmLinkOutOctets,
       "nmLinkInPackets": nmLinkInPackets,
       "nmLinkOutPackets": nmLinkOutPackets,
       "nmLinkInDrops": nmLinkInDrops,
       "nmLinkOutDrops": nmLinkOutDrops,
       "nmLinkLastPoll": nmLinkLastPoll,
       "nmLinkGuestAddress": nmLinkGuestAddress,
       "nmLinkOverrides": nmLinkOverrides,
       "nmLinkRateFromVm": nmLinkRateFromVm,
       "nmMonitorPollInterval": nmMonitorPollInterval,
       "nmMonitorPollDuration": nmMonitorPollDuration,
       "nmMonitorPollCpu": nmMonitorPollCpu,
       "nmLinkNameTable": nmLinkNameTable,
       "nmLinkNameEntry": nmLinkNameEntry,
       "nmLinkNameVm": nmLinkNameVm,
       "nmLinkNameNetwork": nmLinkNameNetwork,
       "nmLinkNameIfIndex": nmLinkNameIfIndex,
       "nmMonitorOverrides": nmMonitorOverrides,
       "nmPairTable": nmPairTable,
       "nmPairEntry": nmPairEntry,
       "nmPairPeer": nmPairPeer,
       "nmPairRate": nmPairRate,
       "nmPairDelay": nmPairDelay,
       "nmPairJitter": nmPairJitter,
       "nmPairLoss": nmPairLoss,
       "nmPairOverrides": nmPairOverrides,
       "nmPairRateFromVm": nmPairRateFromVm,
       "nmSchedule": nmSchedule,
       "nmScheduleChunkTable": nmScheduleChunkTable,
       "nmScheduleChunkEntry": nmScheduleChunkEntry,
       "nmScheduleChunkIndex": nmScheduleChunkIndex,
       "nmScheduleChunkData": nmScheduleChunkData,
       "nmScheduleOperation": nmScheduleOperation,
       "nmScheduleStartDelay": nmScheduleStartDelay,
       "nmScheduleState": nmScheduleState,
       "nmScheduleTopology": nmScheduleTopology,
       "nmScheduleSteps": nmScheduleSteps,
       "nmScheduleDone": nmScheduleDone,
       "nmScheduleElapsed": nmScheduleElapsed,
       "nmScheduleNext": nmScheduleNext,
       "nmScheduleLateMax": nmScheduleLateMax,
       "nmScheduleLastError": nmScheduleLastError,
       "nmScheduleLog": nmScheduleLog,
       "nmScheduleRecentTable": nmScheduleRecentTable,
       "nmScheduleRecentEntry": nmScheduleRecentEntry,
       "nmScheduleRecentIndex": nmScheduleRecentIndex,
       "nmScheduleRecentRow": nmScheduleRecentRow,
       "nmConformance": nmConformance,
       "nmCompliances": nmCompliances,
       "nmAgentCompliance": nmAgentCompliance,
       "nmGroups": nmGroups,
       "nmConfigGroup": nmConfigGroup,
       "nmTxnGroup": nmTxnGroup,
       "nmMonitorGroup": nmMonitorGroup,
       "nmNotificationGroup": nmNotificationGroup,
       "nmScheduleGroup": nmScheduleGroup}
)
