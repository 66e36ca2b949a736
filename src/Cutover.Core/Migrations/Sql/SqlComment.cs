namespace Cutover.Migrations.Sql;

/// <summary>A comment between two statements; suppression comments are read from these.</summary>
public sealed record SqlComment(string Text, int Offset, int Line, int Column, int EndLine);
