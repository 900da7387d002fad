-- An example for query.sql_file (with source.kind: skyserver):
--   skysort run --set source.kind=skyserver --set query.sql_file=queries/example.sql
-- It must return the catalog columns (objid, ra, dec, u, g, r, i, z, fiberMag_g,
-- redshift, zWarning, class); extra columns, such as Galaxy Zoo votes, are kept.
-- Here: bright spectroscopic objects, with the Galaxy Zoo 1 vote fractions where they exist.
SELECT TOP 1000
    p.objid, p.ra, p.dec, p.u, p.g, p.r, p.i, p.z, p.fiberMag_g,
    s.class, s.z AS redshift, s.zWarning,
    zs.p_el, zs.p_cs, zs.p_edge, zs.p_mg
FROM PhotoObj AS p
JOIN SpecObj AS s ON s.bestObjID = p.objid
LEFT JOIN zooSpec AS zs ON zs.specobjid = s.specobjid
WHERE s.class IN ('GALAXY', 'QSO', 'STAR')
    AND p.r BETWEEN 14 AND 18
ORDER BY p.objid
